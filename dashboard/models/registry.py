"""A registry of small frozen model records, keyed by a stable name."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
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
_REGISTRY_LOWER: dict[str, ModelSpec] = {spec.key.lower(): spec for spec in _SPECS}

DEFAULT_TORCHVISION_KEY = "resnet18"
DEFAULT_TRANSFORMERS_KEY = "google/vit-base-patch16-224"
DEFAULT_COMPARE_KEYS = (DEFAULT_TORCHVISION_KEY, DEFAULT_TRANSFORMERS_KEY)

# Hub repository ids as the Hub defines them (huggingface_hub.utils.validate_repo_id): each part
# 1-96 of [A-Za-z0-9_.-], starting and ending with a letter, digit or "_", no "--" or "..", not
# ending in ".git". ASCII only (validate_repo_id's \w would also admit other scripts).
_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
_HUB_ID = re.compile(rf"^(?:{_PART}/)?{_PART}$")
_HUB_REPO_ID = re.compile(rf"^{_PART}/{_PART}$")  # what visitors may type: "org/name"
MAX_ID_LENGTH = 200  # longer ids are refused before anything else; the Hub's own limit is 96+1+96
SHOWN_PREFIX = 60  # refusals quote at most this many characters of what was sent
LOCAL_PREFIX = "local:"  # operator-listed checkpoint folders are chosen as "local:<folder name>"
Origin = Literal["app", "cli"]


def list_models(backend: Backend | None = None) -> list[ModelSpec]:
    """The built-in models, optionally of one backend, in display order."""
    return [spec for spec in _SPECS if backend is None or spec.backend == backend]


def list_keys(backend: Backend | None = None) -> list[str]:
    return [spec.key for spec in list_models(backend)]


def choice_groups() -> dict[str, list[str]]:
    """The built-in keys grouped for a model picker: group title -> keys, in display order."""
    groups: dict[str, list[str]] = {}
    for spec in _SPECS:
        groups.setdefault("CNN" if spec.family == "cnn" else "Transformer", []).append(spec.key)
    return groups


def get_spec(key: str) -> ModelSpec:
    """The built-in spec for ``key``; an unknown key raises an error naming the valid ones."""
    try:
        return _REGISTRY[key]
    except KeyError:
        raise UnknownModelError(
            f"Unknown model {shown(key)}. Valid keys: {', '.join(_REGISTRY)}."
        ) from None


def is_hub_id(text: str) -> bool:
    """True for "name" or "org/name" in the Hub's id grammar (no disk is looked at)."""
    return bool(_HUB_ID.match(text)) and "--" not in text and ".." not in text and not text.endswith(".git")


def is_hub_repo_id(text: str) -> bool:
    """True for "org/name" in the Hub's id grammar: the only free-form ids the app accepts."""
    return is_hub_id(text) and bool(_HUB_REPO_ID.match(text))


def shown(text: object) -> str:
    """What a refusal may quote of user text: a short prefix, repr-quoted (no control characters)."""
    text = text if isinstance(text, str) else str(text)
    return repr(text[:SHOWN_PREFIX] + ("…" if len(text) > SHOWN_PREFIX else ""))


def canonical_key(key_or_id: str) -> str:
    """One spelling per model: surrounding whitespace dropped, built-in keys and Hub ids lowercased
    (the Hub treats ids case-insensitively). Paths (command line only) are resolved separately."""
    text = key_or_id.strip()
    lowered = text.lower()
    if lowered in _REGISTRY_LOWER:
        return _REGISTRY_LOWER[lowered].key
    return lowered if is_hub_id(text) else text


def _unknown(text: str, allow_custom: bool) -> UnknownModelError:
    hint = "; or a Hugging Face Hub id of an image-classification model, like 'org/name'" if allow_custom else ""
    return UnknownModelError(f"Unknown model {shown(text)}. Valid keys: {', '.join(_REGISTRY)}{hint}.")


def resolve_spec(
    key_or_id: str,
    *,
    allow_custom: bool = True,
    origin: Origin = "app",
    local_dirs: Mapping[str, str] | None = None,
) -> ModelSpec:
    """A built-in key, a Hub repository id ("org/name", when ``allow_custom``), an operator-listed
    checkpoint folder (``local:<name>``, from ``local_dirs``), or - only when ``origin`` is "cli" -
    any local checkpoint directory.

    From the app (``origin="app"``) nothing is looked up on the disk here: the answer depends on
    the text alone, so a refusal says nothing about which paths exist on the server. Whether a
    custom id really is an image classifier is checked when it loads.
    """
    if not isinstance(key_or_id, str):
        raise UnknownModelError(f"No model was chosen. Valid keys: {', '.join(_REGISTRY)}.")
    if len(key_or_id) > MAX_ID_LENGTH:
        raise UnknownModelError(
            f"The model id is too long ({len(key_or_id):,} characters, at most {MAX_ID_LENGTH}): "
            f"{shown(key_or_id)}."
        )
    text = key_or_id.strip()
    if not text:
        raise UnknownModelError(f"No model was chosen. Valid keys: {', '.join(_REGISTRY)}.")
    builtin = _REGISTRY_LOWER.get(text.lower())
    if builtin is not None:
        return builtin
    if text.startswith(LOCAL_PREFIX) and local_dirs:
        name = text[len(LOCAL_PREFIX):]
        if name in local_dirs:
            return ModelSpec(LOCAL_PREFIX + name, name, "transformer", "transformers",
                             local_dirs[name], weights="local", builtin=False)
    if origin == "cli" and os.path.isdir(text):  # the operator's own disk
        path = os.path.realpath(text)  # x, x/ and x/. are one key
        return ModelSpec(path, os.path.basename(path), "transformer", "transformers", path,
                         weights="local", builtin=False)
    if is_hub_repo_id(text):
        if not allow_custom:
            raise ModelRefusedError(
                f"Custom model ids are turned off on this deployment, so {shown(text)} cannot be "
                f"loaded. Choose one of: {', '.join(_REGISTRY)}."
            )
        return ModelSpec(canonical_key(text), text, "transformer", "transformers", text, "main", builtin=False)
    raise _unknown(text, allow_custom)
