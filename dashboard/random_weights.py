"""Random-init checkpoints written into the real caches, for tests and benchmarks only.

Model weights cannot always be downloaded (CI, an offline classroom machine). These helpers
write files where the real loaders look for them - ``$TORCH_HOME/hub/checkpoints/<file from the
weights URL>`` and the Hugging Face hub-cache layout under ``$HF_HOME/hub`` - so the real loading
code runs unchanged. Random weights prove plumbing, shapes and speed, never accuracy.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Preprocessor configs as the real repositories publish them (legacy feature-extractor keys).
VIT_PREPROCESSOR = {
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "ViTFeatureExtractor",
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "resample": 2,
    "size": 224,
}
DEIT_PREPROCESSOR = {
    "crop_size": 224,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "DeiTFeatureExtractor",
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "resample": 3,
    "size": 256,
}
# Architecture of each preset (the real configs' sizes); DeiT non-distilled repos are "vit" models.
FULL_SIZE = {
    "google/vit-base-patch16-224": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "google/vit-large-patch16-224": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    "facebook/deit-tiny-patch16-224": dict(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768),
    "facebook/deit-small-patch16-224": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536),
    "facebook/deit-base-patch16-224": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names as torchvision ships them (no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def hub_imagenet_labels() -> list[str]:
    """ImageNet names as the Hub's ImageNet configs list them: torchvision renamed index 134 to
    "crane bird", but the Hub configs keep "crane" at both 134 and 517."""
    labels = imagenet_categories()
    labels[134] = "crane"
    return labels


def write_torchvision_checkpoint(key: str, torch_home: str | os.PathLike, seed: int = 0) -> Path:
    """A random-init state dict saved under the file name torchvision derives from its URL."""
    import torch
    import torchvision.models as tvm

    from dashboard.models.registry import get_spec
    from dashboard.models.torchvision_backend import weights_for

    spec = get_spec(key)
    weights = weights_for(spec)
    torch.manual_seed(seed)
    model = tvm.get_model(spec.source, weights=None, num_classes=len(weights.meta["categories"]))
    path = Path(torch_home) / "hub" / "checkpoints" / os.path.basename(weights.url)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def write_hub_checkpoint(
    repo_id: str,
    hf_home: str | os.PathLike,
    *,
    tiny: bool = True,
    seed: int = 0,
    config_overrides: Mapping[str, Any] | None = None,
    preprocessor: Mapping[str, Any] | None = None,
) -> Path:
    """A random-init ViT classifier in the hub-cache layout; returns the snapshot directory.

    Layout: ``hub/models--ORG--NAME/{blobs/<sha256>, snapshots/<rev>/<file> -> blob, refs/main}``.
    """
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    labels = hub_imagenet_labels()
    sizes = TINY if tiny else FULL_SIZE.get(repo_id, FULL_SIZE["google/vit-base-patch16-224"])
    config = ViTConfig(
        **sizes,
        image_size=224,
        patch_size=16,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        architectures=["ViTForImageClassification"],
        **dict(config_overrides or {}),
    )
    torch.manual_seed(seed)
    model = ViTForImageClassification(config).eval()
    if preprocessor is None:
        preprocessor = DEIT_PREPROCESSOR if repo_id.startswith("facebook/deit") else VIT_PREPROCESSOR
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        (Path(tmp) / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
        return install_snapshot(repo_id, hf_home, Path(tmp))


def install_snapshot(repo_id: str, hf_home: str | os.PathLike, files: Path) -> Path:
    """Copy every file of ``files`` into the hub cache as blobs, linked from a new snapshot."""
    repo_dir = Path(hf_home) / "hub" / f"models--{repo_id.replace('/', '--')}"
    blobs = repo_dir / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    contents = {f.name: f.read_bytes() for f in sorted(files.iterdir()) if f.is_file()}
    revision = hashlib.sha1(b"".join(contents.values())).hexdigest()  # stands in for a commit
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        blob = blobs / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, snapshot))
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision)
    return snapshot
