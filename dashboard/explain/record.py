"""The Explanation record, the heatmap methods per family, and the class/method checks.

No torch here: the tabs and the command line read these names without loading a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

import numpy as np

from dashboard.errors import UnknownClassError, UnsupportedMethodError

if TYPE_CHECKING:
    from PIL import Image

# canonical name -> (shown name, needs the class: False for class-agnostic methods)
METHODS: dict[str, tuple[str, bool]] = {
    "gradcam": ("Grad-CAM", True),
    "gradcam++": ("Grad-CAM++", True),
    "eigencam": ("EigenCAM (gradient-free)", False),
    "rollout": ("Attention rollout", False),
}
# Methods per model family (ModelSpec.family), the family's default first.
FAMILY_METHODS: dict[str, tuple[str, ...]] = {
    "cnn": ("gradcam", "gradcam++", "eigencam"),
    "transformer": ("rollout", "gradcam", "gradcam++", "eigencam"),
}
AUTO = "auto"  # the family's default method
COLORMAP = "jet"  # OpenCV's COLORMAP_JET: blue = low, red = high
DEFAULT_OPACITY = 0.5

Target = Union[int, str, None]


@dataclass(frozen=True)
class ExplainedClass:
    index: int
    label: str
    probability: float


@dataclass(frozen=True)
class Explanation:
    """Where one model looked for one class in one image.

    ``heatmap`` is float32 in [0, 1] with the shape of ``image`` (the uploaded photo, downscaled
    for display), zero outside ``crop_box``, the part of the photo that preprocessing kept.
    """

    model_key: str
    model_name: str
    method: str
    target: ExplainedClass
    heatmap: np.ndarray
    overlay: Image.Image
    image: Image.Image
    crop_box: tuple[int, int, int, int]  # (left, top, right, bottom) in ``image`` pixels
    ms: float  # the method itself: forward (+ backward) and the heatmap, on the model input
    total_ms: float  # everything: preprocessing, the method, mapping back and the overlay
    device: str
    class_specific: bool = field(default=True)

    @property
    def method_name(self) -> str:
        return METHODS[self.method][0]

    def title(self) -> str:
        """"ResNet-18 · tabby · Grad-CAM · 84 ms": what the Compare tab shows above an overlay."""
        return f"{self.model_name} · {self.target.label} · {METHODS[self.method][0]} · {self.ms:.0f} ms"

    def metadata(self) -> dict:
        """JSON-able description (API and command line)."""
        return {
            "model": self.model_key,
            "model_name": self.model_name,
            "method": self.method,
            "method_name": self.method_name,
            "class": {"index": self.target.index, "label": self.target.label,
                      "probability": round(self.target.probability, 6)},
            "class_specific": self.class_specific,
            "ms": round(self.ms, 2),
            "total_ms": round(self.total_ms, 2),
            "device": self.device,
            "image_size": list(self.image.size),
            "crop_box": list(self.crop_box),
            "colormap": COLORMAP,
        }


def resolve_method(method: str | None, family: str, model_name: str) -> str:
    """A canonical method name this family supports; None or "auto" is the family's default."""
    allowed = FAMILY_METHODS[family]
    text = (method or AUTO).strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    text = {"gradcamplusplus": "gradcam++", "gradcampp": "gradcam++", "attentionrollout": "rollout"}.get(text, text)
    if text == AUTO:
        return allowed[0]
    if text not in METHODS:
        raise UnsupportedMethodError(
            f"Unknown heatmap method {str(method)[:40]!r}. Methods: {', '.join(METHODS)} (or auto)."
        )
    if text not in allowed:
        raise UnsupportedMethodError(
            f"{METHODS[text][0]} does not apply to {model_name}. Its methods: {', '.join(allowed)}."
        )
    return text


def resolve_target(target: Target, labels: Sequence[str], model_name: str) -> int | None:
    """The class index asked for: an index (int or digits) or a label (any case); None = top-1."""
    if target is None or (isinstance(target, str) and not target.strip()):
        return None
    n = len(labels)
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        index = int(target)
    elif isinstance(target, str) and target.strip().lstrip("-").isdigit():
        index = int(target.strip())
    elif isinstance(target, str):
        wanted = target.strip().casefold()
        for i, label in enumerate(labels):
            if label.casefold() == wanted:
                return i
        similar = [label for label in labels if label.casefold().startswith(wanted)][:5]
        hint = f" Did you mean: {', '.join(similar)}?" if similar else ""
        raise UnknownClassError(
            f"{model_name} has no class named {target.strip()[:60]!r}. Give one of its labels or an "
            f"index from 0 to {n - 1}.{hint}"
        )
    else:
        raise UnknownClassError(f"The class must be a label or an index from 0 to {n - 1}.")
    if not 0 <= index < n:
        raise UnknownClassError(
            f"Class {index} is outside {model_name}'s {n} classes (indices 0 to {n - 1})."
        )
    return index
