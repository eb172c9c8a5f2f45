"""One colour per model, by its position among the models chosen (issue 9, item 5).

The Compare Labels, the Robustness Labels and sweep curves, and the accuracy-against-latency
plot all colour the n-th chosen model with the n-th colour, so a model keeps its colour from one
view to the next. The latency chart colours its stages in greys, never in a model's colour.
"""

from __future__ import annotations

from collections.abc import Sequence

# Vega's category10, which gradio's plots start with; colour-blind-safe enough for four series.
MODEL_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
STAGE_COLOURS = {"preprocess": "#c7c7c7", "forward": "#7f7f7f", "postprocess": "#3f3f3f"}


def colour_map(names: Sequence[str]) -> dict[str, str]:
    """{name: colour} in the order given (first chosen, first colour), repeats ignored."""
    distinct = list(dict.fromkeys(names))
    return {name: MODEL_COLOURS[i % len(MODEL_COLOURS)] for i, name in enumerate(distinct)}
