"""Heatmaps: where a model looked for a class ("why this class?").

``record`` (the Explanation and the method names; no torch), ``geometry`` (mapping back onto the
photo), ``cnn`` (grad-cam methods), ``vit`` (attention rollout, token grids), ``explainer``
(one private, hook-safe copy per served model). Reached through ``ClassificationService.explain``.
"""
