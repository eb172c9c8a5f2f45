"""Text shown beside a model's answer: the right/wrong mark for an example photo and the model's
reference figures. Plain strings (Markdown), no UI framework: the handlers place them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dashboard.markdown import md_text
from dashboard.models.facts import facts_line


if TYPE_CHECKING:
    from dashboard.service import Classification


def answer_title(result: Classification) -> str:
    """A Label's title: the model's name, and the right/wrong mark when the image is an example."""
    v = result.verdict
    if v is None:
        return result.info.display_name
    if v.right is None:
        return f"{result.info.display_name} · expected {result.expected.name} (no verdict)"
    return f"{result.info.display_name} · {v.mark} expected {result.expected.name}"


def card_details(result: Classification) -> str:
    """Lines appended to the one-line model card: the verdict (examples only), then the facts."""
    lines = []
    v = result.verdict
    if v is not None:  # the text quotes the model's own label: inert in Markdown
        lines.append(f"**Example with a known answer:** {md_text(v.text)}")
    lines.append(facts_line(result.info.key))
    return "".join(f"\n\n{line}" for line in lines)
