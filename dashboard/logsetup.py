"""Logging set-up shared by every entry point (``python -m dashboard`` and the Space's ``app.py``)."""

from __future__ import annotations

import logging

FORMAT = "%(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Our INFO lines (model loads, preloads) on stderr, once; noisy libraries kept quiet."""
    logging.basicConfig(level=level, format=FORMAT)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP request otherwise
    # huggingface_hub installs its own stderr handler on import; propagating to ours as well
    # would print each of its warnings (e.g. "Retrying in 1s") twice.
    logging.getLogger("huggingface_hub").propagate = False
