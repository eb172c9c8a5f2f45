"""Cheap checks on a free-form model before anything expensive happens to it.

A custom model is described by a few small JSON files that a visitor controls (a Hub repository
is anyone's to create). Before transformers parses them, before any weights are fetched and long
before a model is built, the raw JSON is checked field by field against bounds that no real
image classifier on the Hub exceeds, and the parameter count is read from the safetensors
header (or computed in closed form from the config). Nothing here imports torch or builds a
model, so each check costs microseconds whatever the config says.

Written by hand because no library bounds a config: transformers validates types, not sizes.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterator, Mapping
from typing import Any

from dashboard.errors import ModelRefusedError

MAX_JSON_BYTES = 4 * 2**20  # config.json of a 21k-class model is ~1.5 MB (id2label + label2id)
MAX_LABELS = 25_000  # ImageNet-21k has 21,843 classes, the largest label set of Hub classifiers
MAX_IMAGE_SIDE = 1024  # processor sizes / image_size; Hub classifiers use 224-600
MAX_TOKENS = 4_096  # (image_size / patch_size)^2: ViT-L/14 at 518 has 1,369 patches
MAX_SAFETENSORS_HEADER = 16 * 2**20  # a header lists names, dtypes and shapes: kilobytes in practice

# Per-field bounds (inclusive), applied wherever the key appears (sub-configs included), to a
# number or to each element of a list of numbers. The largest Hub classifiers (ViT-H/14,
# EVA-giant, ConvNeXt-XXL, Swin-L) stay well inside: ViT-H has 32 layers, 1280 hidden, 16 heads.
FIELD_BOUNDS: dict[str, tuple[int, int]] = {
    "num_hidden_layers": (1, 64),
    "hidden_size": (1, 4096),
    "num_attention_heads": (1, 64),
    "intermediate_size": (1, 16_384),
    "image_size": (1, MAX_IMAGE_SIDE),
    "patch_size": (1, 64),
    "num_channels": (1, 4),
    "num_labels": (1, MAX_LABELS),
    "encoder_stride": (1, 64),
    "embed_dim": (1, 4096),
    "embedding_size": (1, 4096),
    "hidden_sizes": (1, 4096),
    "depths": (1, 64),
    "num_heads": (1, 64),
    "window_size": (1, 64),
    "num_stages": (1, 16),
    "mlp_ratio": (1, 16),
}
MAX_LIST_FIELD = 16  # hidden_sizes / depths / num_heads: one entry per stage
MAX_TOTAL_DEPTH = 128  # sum of "depths" (Swin-L: 24, ConvNeXt-XXL: 36)
PROCESSOR_SIZE_FIELDS = ("size", "crop_size", "image_size")
PROCESSOR_SIDE_KEYS = ("height", "width", "shortest_edge", "longest_edge")


def _refuse(name: str, why: str) -> ModelRefusedError:
    return ModelRefusedError(f"{name} cannot be loaded on this deployment: {why}.")


def read_json(path: str | os.PathLike, name: str, what: str) -> dict:
    """A small JSON object from disk, refusing oversized or malformed files before parsing."""
    size = os.path.getsize(path)
    if size > MAX_JSON_BYTES:
        raise _refuse(name, f"its {what} is {size / 2**20:.1f} MB (at most {MAX_JSON_BYTES // 2**20} MB)")
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except (ValueError, UnicodeDecodeError):
        raise _refuse(name, f"its {what} is not valid JSON") from None
    if not isinstance(data, dict):
        raise _refuse(name, f"its {what} is not a JSON object")
    return data


def _fields(obj: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Every (key, value) of a JSON object, sub-objects included (a few levels deep)."""
    if depth > 4 or not isinstance(obj, Mapping):
        return
    for key, value in obj.items():
        yield key, value
        if isinstance(value, Mapping) and key not in ("id2label", "label2id"):
            yield from _fields(value, depth + 1)


def _as_ints(name: str, field: str, value: Any) -> list[int]:
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and len(value) > MAX_LIST_FIELD:
        raise _refuse(name, f"{field} has {len(value)} entries (at most {MAX_LIST_FIELD})")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _refuse(name, f"{field} must be a number, not {json.dumps(v)[:20]}")
        out.append(int(v))
    return out


def check_config(config: Mapping[str, Any], name: str) -> None:
    """Refuse a config.json whose sizes no real Hub image classifier has (before transformers)."""
    for field, value in _fields(config):
        if field in FIELD_BOUNDS and value is not None:
            low, high = FIELD_BOUNDS[field]
            for v in _as_ints(name, field, value):
                if not low <= v <= high:
                    raise _refuse(name, f"its config sets {field}={v} (this deployment allows {low}-{high})")
            if field == "depths" and sum(_as_ints(name, field, value)) > MAX_TOTAL_DEPTH:
                raise _refuse(name, f"its config has {sum(value)} blocks in all (at most {MAX_TOTAL_DEPTH})")
        if field in ("id2label", "label2id") and isinstance(value, (Mapping, list)) and len(value) > MAX_LABELS:
            raise _refuse(name, f"it has {len(value):,} labels (at most {MAX_LABELS:,})")
    image, patch = config.get("image_size"), config.get("patch_size")
    if isinstance(image, int) and isinstance(patch, int) and patch > 0 and (image // patch) ** 2 > MAX_TOKENS:
        raise _refuse(name, f"{image}/{patch} makes {(image // patch) ** 2:,} patches (at most {MAX_TOKENS:,})")


def check_processor(processor: Mapping[str, Any], name: str) -> None:
    """Refuse an image processor that would resize every image to more than MAX_IMAGE_SIDE."""
    for field in PROCESSOR_SIZE_FIELDS:
        value = processor.get(field)
        if value is None:
            continue
        if isinstance(value, Mapping):
            sides = [value[k] for k in PROCESSOR_SIDE_KEYS if value.get(k) is not None]
        else:
            sides = value if isinstance(value, list) else [value]
        for side in _as_ints(name, f"the processor's {field}", sides):
            if not 1 <= side <= MAX_IMAGE_SIDE:
                raise _refuse(name, f"its image processor resizes to {side} pixels (at most {MAX_IMAGE_SIDE})")


# --- the parameter count, without building the model --------------------------------------
def safetensors_header_params(path: str | os.PathLike) -> int:
    """Parameters listed in a safetensors file's header (8-byte length + JSON), weights unread."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError("truncated safetensors file")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_SAFETENSORS_HEADER:
            raise ValueError(f"safetensors header of {length} bytes")
        header = json.loads(f.read(length))
    total = 0
    for key, entry in header.items():
        if key != "__metadata__":
            total += math.prod(int(d) for d in entry["shape"])
    return total


def local_safetensors_params(folder: str | os.PathLike) -> int | None:
    """Parameters from the headers of model.safetensors (or its shards) in ``folder``; None when
    the weights are not there."""
    single = os.path.join(folder, "model.safetensors")
    if os.path.isfile(single):
        return safetensors_header_params(single)
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(index):
        shards = set(read_json(index, "this model", "weights index").get("weight_map", {}).values())
        paths = [os.path.join(folder, os.path.basename(str(s))) for s in shards]
        if paths and all(os.path.isfile(p) for p in paths):
            return sum(safetensors_header_params(p) for p in paths)
    return None


def closed_form_params(config: Mapping[str, Any]) -> int | None:
    """Exact parameter count of (ViT|DeiT)ForImageClassification from its config; None for other
    architectures (their count then comes from the safetensors header)."""
    model_type = config.get("model_type")
    if model_type not in ("vit", "deit"):
        return None
    h = int(config.get("hidden_size", 768))
    layers = int(config.get("num_hidden_layers", 12))
    inter = int(config.get("intermediate_size", 3072))
    channels = int(config.get("num_channels", 3))
    image, patch = config.get("image_size", 224), config.get("patch_size", 16)
    image = (image, image) if isinstance(image, int) else tuple(image)
    patch = (patch, patch) if isinstance(patch, int) else tuple(patch)
    patches = (image[0] // patch[0]) * (image[1] // patch[1])
    labels = len(config["id2label"]) if "id2label" in config else int(config.get("num_labels", 2))
    bias = 1 if config.get("qkv_bias", True) else 0
    tokens = 2 if model_type == "deit" else 1  # DeiT adds a distillation token
    embeddings = tokens * h + (patches + tokens) * h + channels * patch[0] * patch[1] * h + h
    per_layer = 3 * (h * h + bias * h) + (h * h + h) + 2 * (2 * h) + (h * inter + inter) + (inter * h + h)
    head = h * labels + labels if labels > 0 else 0
    return embeddings + layers * per_layer + 2 * h + head
