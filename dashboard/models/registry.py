"""A registry of small frozen model records, keyed by a stable name."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

from dashboard.errors import ModelRefusedError, UnknownModelError

Backend = Literal["torchvision", "transformers"]
Family = Literal["cnn", "transformer"]


@dataclass(frozen=True)
class ModelSpec:
    """What is needed to build one classifier.

    ``source`` is the torchvision builder name (``resnet18``) or a Hub id / local directory.
    ``weights`` is the torchvision weights entry name (``DEFAULT``) or a Hub revision.
    """

    key: str
    display_name: str
    family: Family
    backend: Backend
    source: str
    weights: str = "DEFAULT"
    builtin: bool = True
    # Module path (dotted, negative indices allowed) of the layer Grad-CAM-style heatmaps read,
    # declared once per family in TARGET_LAYERS; None: derived at explain time (custom Hub ids).
    target_layer: str | None = None


# Heatmap target layer per architecture family (see dashboard/explain): the last block of a
# ResNet/ResNeXt, SqueezeNet's last Fire module, and the input norm of a ViT's last encoder layer
# (the class token reads the patch tokens there; the last layer's own output reaches the head
# only through the class token, so its patch tokens carry no gradient).
TARGET_LAYERS = {
    "resnet": "layer4.-1",
    "squeezenet": "features.-1",
    "vit": "vit.layers.-1.layernorm_before",
}


def _tv(key: str, display_name: str) -> ModelSpec:
    family = "squeezenet" if key.startswith("squeezenet") else "resnet"  # ResNeXt is a ResNet
    return ModelSpec(key, display_name, "cnn", "torchvision", source=key,
                     target_layer=TARGET_LAYERS[family])


def _hf(repo_id: str, display_name: str) -> ModelSpec:
    return ModelSpec(repo_id, display_name, "transformer", "transformers", repo_id, weights="main",
                     target_layer=TARGET_LAYERS["vit"])  # the DeiT presets are "vit" checkpoints


_SPECS: tuple[ModelSpec, ...] = (
    _tv("resnet18", "ResNet-18"),
    _tv("resnet34", "ResNet-34"),
    _tv("resnet50", "ResNet-50"),
    _tv("resnet101", "ResNet-101"),
    _tv("resnet152", "ResNet-152"),
    _tv("resnext50_32x4d", "ResNeXt-50 32x4d"),
    _tv("resnext101_32x8d", "ResNeXt-101 32x8d"),
    _tv("squeezenet1_0", "SqueezeNet 1.0"),
    _tv("squeezenet1_1", "SqueezeNet 1.1"),
    _hf("google/vit-base-patch16-224", "ViT-B/16"),
    _hf("google/vit-large-patch16-224", "ViT-L/16"),
    _hf("facebook/deit-tiny-patch16-224", "DeiT-Ti"),
    _hf("facebook/deit-small-patch16-224", "DeiT-S"),
    _hf("facebook/deit-base-patch16-224", "DeiT-B"),
)
_REGISTRY: dict[str, ModelSpec] = {spec.key: spec for spec in _SPECS}

DEFAULT_TORCHVISION_KEY = "resnet18"
DEFAULT_TRANSFORMERS_KEY = "google/vit-base-patch16-224"
DEFAULT_COMPARE_KEYS = (DEFAULT_TORCHVISION_KEY, DEFAULT_TRANSFORMERS_KEY)

# Hub repo ids: "name" or "org/name", letters, digits, "-", "_", "." (no "--" or ".." runs).
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


def list_models(backend: Backend | None = None) -> list[ModelSpec]:
    """The built-in models, optionally of one backend, in display order."""
    return [spec for spec in _SPECS if backend is None or spec.backend == backend]


def list_keys(backend: Backend | None = None) -> list[str]:
    return [spec.key for spec in list_models(backend)]


def get_spec(key: str) -> ModelSpec:
    """The built-in spec for ``key``; an unknown key raises an error naming the valid ones."""
    try:
        return _REGISTRY[key]
    except KeyError:
        raise UnknownModelError(
            f"Unknown model {key!r}. Valid keys: {', '.join(_REGISTRY)}."
        ) from None


def is_hub_id(text: str) -> bool:
    return bool(_HUB_ID.match(text)) and "--" not in text and ".." not in text


def resolve_spec(key_or_id: str, *, allow_custom: bool = True) -> ModelSpec:
    """A built-in key, or (when allowed) any Hub id or local directory of a transformers classifier.

    Whether a custom id really is an image classifier is checked when it loads.
    """
    text = (key_or_id or "").strip()
    if text in _REGISTRY:
        return _REGISTRY[text]
    if not text:
        raise UnknownModelError(f"No model was chosen. Valid keys: {', '.join(_REGISTRY)}.")
    looks_custom = os.path.isdir(text) or is_hub_id(text)
    if looks_custom and not allow_custom:
        raise ModelRefusedError(
            f"Custom model ids are turned off on this deployment, so {text!r} cannot be loaded. "
            f"Choose one of: {', '.join(_REGISTRY)}."
        )
    if os.path.isdir(text):
        return ModelSpec(text, os.path.basename(os.path.normpath(text)), "transformer",
                         "transformers", os.path.abspath(text), weights="local", builtin=False)
    if "/" in text and is_hub_id(text):
        return ModelSpec(text, text, "transformer", "transformers", text, "main", builtin=False)
    raise UnknownModelError(
        f"Unknown model {text!r}. Valid keys: {', '.join(_REGISTRY)}; "
        "or a Hugging Face Hub id of an image-classification model, like 'org/name'."
    )

