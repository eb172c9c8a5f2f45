"""The one escaping function for text a visitor controls (model ids, labels, class folder names,
file names) placed inside Markdown that the page renders."""

from __future__ import annotations

import html
import re

# Markdown punctuation that can start code, emphasis, links, tables or HTML; "_" only at a word's
# edge (inside a word, as in ResNet18_Weights, it is literal in CommonMark).
_MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md_text(text: object) -> str:
    """User-controlled text made inert inside Markdown: HTML-escaped (<, >, &, quotes), then
    Markdown punctuation backslash-escaped."""
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(0), html.escape(str(text), quote=True))
