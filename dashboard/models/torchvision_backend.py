"""Build a Classifier from a torchvision weights enum: its transforms, categories and file."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlparse

from dashboard.errors import WeightsUnavailableError
from dashboard.models.classifier import Classifier, ModelInfo
from dashboard.models.registry import ModelSpec

log = logging.getLogger(__name__)


def weights_for(spec: ModelSpec):  # -> torchvision.models.WeightsEnum
    """The weights entry of a torchvision spec (``DEFAULT`` resolves to the recommended one)."""
    import torchvision.models as tvm

    return tvm.get_model_weights(spec.source)[spec.weights]


def checkpoint_path(spec: ModelSpec) -> Path:
    """Where torch.hub keeps this spec's weights: $TORCH_HOME/hub/checkpoints/<url file name>."""
    import torch.hub

    url = weights_for(spec).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def fetch(spec: ModelSpec) -> Path:
    """Make sure the weights file is in the torch cache (downloading it if needed)."""
    import torch.hub

    path = checkpoint_path(spec)
    if not path.is_file():
        try:
            torch.hub.load_state_dict_from_url(weights_for(spec).url, progress=False, check_hash=True)
        except Exception as exc:
            raise _unavailable(spec, path, exc) from exc
    return path


def load(spec: ModelSpec, device: str) -> Classifier:
    """Build the model with its weights from the torch cache, in eval mode on ``device``."""
    import torch
    import torchvision.models as tvm

    weights = weights_for(spec)
    path = fetch(spec)
    try:
        model = tvm.get_model(spec.source, weights=weights)
    except Exception as exc:  # truncated or foreign file: torch.load / load_state_dict fail
        log.warning("weights of %s at %s: %s: %s", spec.key, path, type(exc).__name__, exc)
        raise WeightsUnavailableError(
            f"The weights file for {spec.display_name} at this server's torch cache is damaged or "
            f"does not match the model ({type(exc).__name__}). Ask the operator to delete it and "
            f"run `python -m dashboard download {spec.key}` to fetch it again.",
            detail=f"weights file: {path}",
        ) from exc
    torch_device = torch.device(device)
    model = model.eval().to(torch_device)
    transform = weights.transforms()
    crop = transform.crop_size[0]

    def preprocess(images: list) -> torch.Tensor:
        return torch.stack([transform(image) for image in images])

    info = ModelInfo(
        key=spec.key,
        display_name=spec.display_name,
        backend=spec.backend,
        num_params=sum(p.numel() for p in model.parameters()),
        weight_bytes=_state_bytes(model),
        input_size=(crop, crop),
        weights_id=f"torchvision {type(weights).__name__}.{weights.name}",
        num_classes=len(weights.meta["categories"]),
    )
    return Classifier(info, model, preprocess, weights.meta["categories"], torch_device,
                      normalization=(transform.mean, transform.std))


def _state_bytes(model) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _unavailable(spec: ModelSpec, path: Path, exc: BaseException) -> WeightsUnavailableError:
    reason = getattr(exc, "reason", None)
    log.warning("weights of %s not in %s: %s", spec.key, path, exc)
    return WeightsUnavailableError(
        f"Weights for {spec.display_name} are not in the torch cache of this server and could not "
        f"be downloaded ({reason if isinstance(reason, str) else type(exc).__name__}). Ask the "
        f"operator to run `python -m dashboard download {spec.key}` on a machine with network "
        "(with the same TORCH_HOME), or to copy the file there.",
        detail=f"expected weights file: {path}",
    )
