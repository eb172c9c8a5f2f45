"""Accuracy on labelled images: dataset readers, label matching, metrics and engines (local, Ray).

Reached through ``ClassificationService.evaluate``; nothing heavy is imported here.
"""
