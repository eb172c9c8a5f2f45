"""Build a Classifier from a Hugging Face image-classification model (Auto classes)."""

from __future__ import annotations

import os

from dashboard.errors import (
    ModelError,
    ModelRefusedError,
    NotAnImageClassifierError,
    WeightsUnavailableError,
)
from dashboard.models.classifier import Classifier, ModelInfo
from dashboard.models.network import is_network_error, reason
from dashboard.models.registry import ModelSpec


def _revision(spec: ModelSpec) -> str | None:
    return None if spec.weights == "local" else spec.weights


def load_config(spec: ModelSpec):  # -> transformers.PretrainedConfig
    """The model's config (a small file), refusing anything that is not an image classifier."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    _probe_hub(spec)
    try:
        config = AutoConfig.from_pretrained(
            spec.source, revision=_revision(spec), trust_remote_code=False
        )
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise ModelRefusedError(
                f"{spec.key!r} needs to run its own Python code from the Hub, which this dashboard "
                "never does (trust_remote_code is always off). Choose a model supported by "
                "transformers itself."
            ) from exc
        raise NotAnImageClassifierError(
            f"{spec.key!r} is not a model that transformers can load ({exc})."
        ) from exc
    except OSError as exc:
        raise _unavailable(spec, exc) from exc
    if config.model_type not in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES:
        raise NotAnImageClassifierError(
            f"{spec.key!r} is a {config.model_type!r} model, not an image classifier. Choose a "
            "model tagged 'image-classification' on the Hub (for example "
            "google/vit-base-patch16-224)."
        )
    return config


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _probe_hub(spec: ModelSpec) -> None:
    """For a Hub id whose config is not cached: one HEAD request without retries, so that an
    unknown id or an unreachable network fails in about a second with its real reason, instead
    of after ~30 s of huggingface_hub's retries with a bare "(OSError)"."""
    if spec.weights == "local" or _offline():
        return
    from huggingface_hub import get_hf_file_metadata, hf_hub_url, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(try_to_load_from_cache(spec.source, "config.json", revision=_revision(spec)), str):
        return
    try:
        get_hf_file_metadata(hf_hub_url(spec.source, "config.json", revision=_revision(spec)), timeout=10)
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise _not_found(spec) from exc
    except Exception as exc:
        if is_network_error(exc):
            raise WeightsUnavailableError(
                f"{spec.key!r} is not in the Hugging Face cache and the Hub cannot be reached from this "
                f"machine: the network is unreachable ({reason(exc)}). Connect this machine, or on one "
                f"with network run `python -m dashboard download {spec.key}` and copy its HF_HOME here."
            ) from exc
        raise _unavailable(spec, exc) from exc


def _not_found(spec: ModelSpec) -> ModelError:
    return ModelError(
        f"{spec.key!r} was not found on the Hugging Face Hub (or is private or gated). "
        "Check the id, e.g. google/vit-base-patch16-224."
    )


def count_parameters(config) -> int:
    """Parameters of the architecture, counted on the meta device (no weights, no memory)."""
    import torch
    from transformers import AutoModelForImageClassification

    with torch.device("meta"):
        model = AutoModelForImageClassification.from_config(config)
    return sum(p.numel() for p in model.parameters())


def fetch(spec: ModelSpec) -> None:
    """Make sure config, image processor and weights are in the Hub cache."""
    load_config(spec)
    if spec.weights == "local":
        return
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(
            spec.source,
            revision=_revision(spec),
            allow_patterns=["*.json", "*.safetensors", "*.txt"],
        )
    except Exception as exc:
        raise _unavailable(spec, exc) from exc


def load(spec: ModelSpec, device: str, *, max_params: int | None = None) -> Classifier:
    """Load processor and model through the Hub cache; ``max_params`` caps custom models."""
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the server log is no terminal
    config = load_config(spec)
    num_params = count_parameters(config)
    if max_params is not None and num_params > max_params:
        raise ModelRefusedError(
            f"{spec.key!r} has {num_params / 1e6:.0f}M parameters; this deployment loads models "
            f"of at most {max_params / 1e6:.0f}M."
        )
    try:
        processor = AutoImageProcessor.from_pretrained(spec.source, revision=_revision(spec))
        model = AutoModelForImageClassification.from_pretrained(
            spec.source, revision=_revision(spec), trust_remote_code=False
        )
    except OSError as exc:
        raise _unavailable(spec, exc) from exc
    except Exception as exc:  # a damaged safetensors file, mismatched shapes ...
        raise WeightsUnavailableError(
            f"The files of {spec.key!r} in the Hugging Face cache could not be loaded "
            f"({type(exc).__name__}: {exc}). Delete that model's folder under "
            f"{_hub_cache()} and run `python -m dashboard download {spec.key}`."
        ) from exc
    torch_device = torch.device(device)
    model = model.eval().to(torch_device)

    def preprocess(images: list) -> torch.Tensor:
        return processor(images=images, return_tensors="pt")["pixel_values"]

    def logits_of(output) -> torch.Tensor:
        return output.logits

    id2label = model.config.id2label
    labels = [str(id2label[i]) for i in range(len(id2label))]
    info = ModelInfo(
        key=spec.key,
        display_name=spec.display_name,
        backend=spec.backend,
        num_params=num_params,
        weight_bytes=sum(t.numel() * t.element_size() for t in model.state_dict().values()),
        input_size=_input_size(processor, model.config),
        weights_id=spec.source if spec.weights == "local" else f"{spec.source}@{spec.weights}",
        num_classes=len(labels),
    )
    return Classifier(info, model, preprocess, labels, torch_device, logits_of)


def _input_size(processor, config) -> tuple[int, int]:
    crop = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop", False) else None
    size = crop or getattr(processor, "size", None)
    if isinstance(size, dict) and "height" in size:
        return int(size["height"]), int(size["width"])
    side = int(getattr(config, "image_size", 224))
    return side, side


def _hub_cache() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _unavailable(spec: ModelSpec, exc: BaseException) -> ModelError:
    text = str(exc)
    if "not a valid model identifier" in text or "Repository Not Found" in text:
        return _not_found(spec)
    if _offline():
        where = "HF_HUB_OFFLINE is set, so nothing is downloaded"
    elif is_network_error(exc):
        where = f"the network is unreachable ({reason(exc)})"
    else:
        where = f"the download failed ({reason(exc)})"
    return WeightsUnavailableError(
        f"{spec.key!r} is not in the Hugging Face cache ({_hub_cache()}) and {where}. On a machine "
        f"with network, run `python -m dashboard download {spec.key}` with the same HF_HOME, then it "
        "works offline."
    )
