"""Build a Classifier from a Hugging Face image-classification model (Auto classes)."""

from __future__ import annotations

import logging
import os

from dashboard.errors import (
    ModelError,
    ModelRefusedError,
    NotAnImageClassifierError,
    WeightsUnavailableError,
)
from dashboard.models import custom_checks
from dashboard.models.classifier import Classifier, ModelInfo
from dashboard.models.network import is_network_error, reason
from dashboard.models.registry import ModelSpec


log = logging.getLogger(__name__)
SAFE_PATTERNS = ["*.json", "*.safetensors", "*.txt"]  # never pickled weights, never code
# A custom repository is anyone's: fetch only the files a classifier needs (not a 50 GB "notes.txt").
CUSTOM_PATTERNS = ["config.json", "preprocessor_config.json", "model.safetensors",
                   "model.safetensors.index.json", "model-*-of-*.safetensors"]


def _revision(spec: ModelSpec) -> str | None:
    return None if spec.weights == "local" else spec.weights


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _model_file(spec: ModelSpec, filename: str, *, required: bool) -> str | None:
    """One small file of the model: from its local folder, or through the Hub cache by repository
    id (hf_hub_download never reads a local directory, so a Hub id cannot name a server path)."""
    if spec.weights == "local":
        path = os.path.join(spec.source, filename)
        if os.path.isfile(path):
            return path
        if required:
            raise NotAnImageClassifierError(
                f"{spec.key!r} is not a model that transformers can load (it has no {filename}).",
                detail=f"{filename} missing in {spec.source}",
            )
        return None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        if not _offline():
            # one HEAD request without retries (also for the built-ins): an unknown id or an
            # unreachable network fails in about a second with its reason, instead of after
            # ~30 s of huggingface_hub's retries
            _check_remote_size(spec, filename)
        return hf_hub_download(spec.source, filename, revision=_revision(spec))
    except ModelError:
        raise
    except LocalEntryNotFoundError as exc:
        if required:
            raise _unavailable(spec, exc) from exc
        return None
    except EntryNotFoundError as exc:
        if required:
            raise NotAnImageClassifierError(
                f"{spec.key!r} has no {filename}, so it is not a model that transformers can load."
            ) from exc
        return None
    except Exception as exc:
        raise _unavailable(spec, exc) from exc


def _check_remote_size(spec: ModelSpec, filename: str) -> None:
    """Refuse an oversized JSON file from its HTTP headers, before downloading it."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(spec.source, filename, revision=_revision(spec)), str):
        return  # already in the cache (read_json bounds it)
    size = get_hf_file_metadata(hf_hub_url(spec.source, filename, revision=_revision(spec))).size
    if size is not None and size > custom_checks.MAX_JSON_BYTES:
        raise ModelRefusedError(f"{spec.key!r} cannot be loaded on this deployment: its {filename} is "
                                f"{size / 2**20:.0f} MB (at most {custom_checks.MAX_JSON_BYTES // 2**20} MB).")


def load_config(spec: ModelSpec, *, check: bool = True):  # -> (transformers.PretrainedConfig, raw dict)
    """The model's config (a small file), refusing anything that is not an image classifier.

    With ``check`` (custom models) the raw JSON is bounded field by field before transformers
    parses it (see custom_checks).
    """
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    path = _model_file(spec, "config.json", required=True)
    raw = custom_checks.read_json(path, repr(spec.key), "config.json")
    if check:
        custom_checks.check_config(raw, repr(spec.key))
    model_type = raw.get("model_type")
    if "auto_map" in raw and model_type not in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES:
        raise _remote_code(spec)
    try:
        config = AutoConfig.from_pretrained(os.path.dirname(path), trust_remote_code=False)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise _remote_code(spec) from exc
        log.info("config of %s refused: %s", spec.key, exc)
        raise NotAnImageClassifierError(
            f"{spec.key!r} is not a model that transformers can load.", detail=str(exc)
        ) from exc
    except OSError as exc:
        raise _unavailable(spec, exc) from exc
    if config.model_type not in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES:
        raise NotAnImageClassifierError(
            f"{spec.key!r} is a {str(config.model_type)[:40]!r} model, not an image classifier. Choose a "
            "model tagged 'image-classification' on the Hub (for example "
            "google/vit-base-patch16-224)."
        )
    return config, raw


def _remote_code(spec: ModelSpec) -> ModelRefusedError:
    return ModelRefusedError(
        f"{spec.key!r} needs to run its own Python code from the Hub, which this dashboard "
        "never does (trust_remote_code is always off). Choose a model supported by "
        "transformers itself."
    )


def parameter_count(spec: ModelSpec, raw_config: dict) -> int | None:
    """Parameters without building the model: the safetensors header of weights already on disk,
    else the closed form of the config (ViT/DeiT), else (online) the Hub's header-only read;
    None when none of these can tell."""
    folder = spec.source if spec.weights == "local" else _cached_folder(spec)
    if folder is not None:
        try:
            count = custom_checks.local_safetensors_params(folder)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WeightsUnavailableError(
                f"The weights of {spec.key!r} are damaged (their safetensors header cannot be read).",
                detail=f"{folder}: {exc}",
            ) from exc
        if count is not None:
            return count
    closed = custom_checks.closed_form_params(raw_config)
    if closed is not None or spec.weights == "local" or _offline():
        return closed
    from huggingface_hub import get_safetensors_metadata

    try:  # reads only the header(s), with HTTP range requests
        metadata = get_safetensors_metadata(spec.source, revision=_revision(spec))
    except Exception as exc:
        log.info("no safetensors header for %s: %s", spec.key, exc)
        return None
    return sum(metadata.parameter_count.values())


def _cached_folder(spec: ModelSpec) -> str | None:
    """The snapshot folder of the model in the Hub cache, when its config is there."""
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(spec.source, "config.json", revision=_revision(spec))
    return os.path.dirname(path) if isinstance(path, str) else None


def _check_size(spec: ModelSpec, raw_config: dict, max_params: int) -> None:
    num_params = parameter_count(spec, raw_config)
    if num_params is None:
        if _offline() or spec.weights == "local":
            return  # nothing to download: loading will say what is missing
        raise ModelRefusedError(
            f"{spec.key!r} publishes no safetensors weights, so its size cannot be checked before "
            "downloading; this dashboard loads custom models only from safetensors files."
        )
    if num_params > max_params:
        raise ModelRefusedError(
            f"{spec.key!r} has {num_params / 1e6:.0f}M parameters; this deployment loads models "
            f"of at most {max_params / 1e6:.0f}M."
        )


def check(spec: ModelSpec, max_params: int | None) -> dict:
    """Everything that can refuse a custom model cheaply, in bounded time: config fields, the
    kind of model, the image processor's sizes and the parameter count. Returns the raw config."""
    _, raw = load_config(spec, check=True)
    processor_path = _model_file(spec, "preprocessor_config.json", required=False)
    if processor_path is not None:
        custom_checks.check_processor(
            custom_checks.read_json(processor_path, repr(spec.key), "preprocessor_config.json"), repr(spec.key)
        )
    if max_params is not None:
        _check_size(spec, raw, max_params)
    return raw


def fetch(spec: ModelSpec) -> str:
    """Make sure config, image processor and weights are in the Hub cache; the snapshot folder."""
    if spec.weights == "local":
        load_config(spec, check=not spec.builtin)
        return spec.source
    from huggingface_hub import snapshot_download

    load_config(spec, check=not spec.builtin)
    try:
        return snapshot_download(spec.source, revision=_revision(spec),
                                 allow_patterns=SAFE_PATTERNS if spec.builtin else CUSTOM_PATTERNS)
    except Exception as exc:
        raise _unavailable(spec, exc) from exc


def load(spec: ModelSpec, device: str, *, max_params: int | None = None) -> Classifier:
    """Load processor and model through the Hub cache; custom models (``not spec.builtin``) are
    checked first (custom_checks) and capped at ``max_params`` parameters."""
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the server log is no terminal
    if not spec.builtin:
        check(spec, max_params)
    folder = fetch(spec)
    if not spec.builtin:  # the files just fetched are checked again, not the ones checked before
        check(spec, max_params)
    try:
        processor = AutoImageProcessor.from_pretrained(folder)
        model = AutoModelForImageClassification.from_pretrained(
            folder, trust_remote_code=False, use_safetensors=True if not spec.builtin else None
        )
    except Exception as exc:  # missing or damaged files, mismatched shapes ...
        log.warning("loading %s from %s failed: %s: %s", spec.key, folder, type(exc).__name__, exc)
        raise WeightsUnavailableError(
            f"The files of {spec.key!r} in this server's Hugging Face cache could not be loaded "
            f"({type(exc).__name__}). Ask the operator to delete that model's folder from the cache "
            f"and run `python -m dashboard download {spec.key}`.",
            detail=f"{folder}: {type(exc).__name__}: {exc}",
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
        num_params=sum(p.numel() for p in model.parameters()),
        weight_bytes=sum(t.numel() * t.element_size() for t in model.state_dict().values()),
        input_size=_input_size(processor, model.config),
        weights_id=spec.key if spec.weights == "local" else f"{spec.source}@{spec.weights}",
        num_classes=len(labels),
    )
    normalization = ((processor.image_mean, processor.image_std)
                     if getattr(processor, "do_normalize", False) else None)
    return Classifier(info, model, preprocess, labels, torch_device, logits_of, normalization=normalization)


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
    """What the visitor reads (no server path) and what the operator gets (the cache path)."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    text = str(exc)
    if isinstance(exc, (RepositoryNotFoundError, RevisionNotFoundError)) or "not a valid model identifier" in text:
        return ModelError(
            f"{spec.key!r} was not found on the Hugging Face Hub (or is private or gated). "
            "Check the id, e.g. google/vit-base-patch16-224."
        )
    if _offline():
        where = "HF_HUB_OFFLINE is set, so nothing is downloaded"
    elif is_network_error(exc):
        where = f"the network is unreachable ({reason(exc)})"
    else:
        where = f"the download failed ({type(exc).__name__})"
    log.warning("%s is not in the Hugging Face cache %s: %s", spec.key, _hub_cache(), exc)
    return WeightsUnavailableError(
        f"{spec.key!r} is not in the Hugging Face cache of this server and {where}. Ask the operator "
        f"to run `python -m dashboard download {spec.key}` on a machine with network (with the same HF_HOME); then it works offline.",
        detail=f"Hugging Face cache: {_hub_cache()}",
    )
