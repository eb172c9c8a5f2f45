"""Exceptions raised by the core. The UI turns each into one readable message."""

from __future__ import annotations


class DashboardError(Exception):
    """Base class: the message is meant to be shown to a person as it is.

    ``detail`` is for the operator only (server paths, library errors): the server log and the
    command line print it, the browser never sees it.
    """

    def __init__(self, *args: object, detail: str | None = None) -> None:
        super().__init__(*args)
        self.detail = detail


# --- images -------------------------------------------------------------------------------
class ImageInputError(DashboardError):
    """An uploaded file cannot be used as an image."""


class EmptyImageError(ImageInputError):
    """No image was given, or the file is empty."""


class UnsupportedImageFormatError(ImageInputError):
    """The file is not one of the allowed image formats."""


class ImageTooLargeError(ImageInputError):
    """The image declares more pixels than the configured cap."""


class ImageShapeError(ImageInputError):
    """The image is so elongated that resizing it for a model would need far too much memory."""


class CorruptImageError(ImageInputError):
    """The file claims to be an image but cannot be decoded (truncated, damaged)."""


# --- models -------------------------------------------------------------------------------
class ModelError(DashboardError):
    """A model cannot be found, loaded or run."""


class UnknownModelError(ModelError, KeyError):
    """A model key that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelRefusedError(ModelError):
    """A model id that this deployment does not allow (free-form ids off, too large, not a classifier)."""


class NotAnImageClassifierError(ModelRefusedError):
    """A Hub id or directory whose model is not an image-classification model."""


class WeightsUnavailableError(ModelError):
    """Weights are missing from the cache and could not be fetched, or are corrupt."""


class ModelBusyError(ModelError):
    """Every slot for checking and loading custom models is taken: try again shortly."""


class DeviceUnavailableError(ModelError):
    """The configured device (e.g. cuda) does not exist on this machine."""


class InvalidRequestError(DashboardError):
    """A request parameter (top-k, the model choice) that is not what the form allows."""


class InferenceError(ModelError):
    """A model failed while classifying an image."""


# --- perturbations (robustness) -----------------------------------------------------------------
class PerturbationError(DashboardError):
    """A perturbation or sweep parameter out of range (strength, steps, seed, patch, models)."""

# --- explanations (heatmaps) ---------------------------------------------------------------
class ExplainError(DashboardError):
    """An explanation that cannot be made as asked."""


class UnknownClassError(ExplainError):
    """A class (index or label) that the model does not have."""


class UnsupportedMethodError(ExplainError):
    """An unknown heatmap method, or one this model's family does not support."""


# --- runtimes (ONNX Runtime beside PyTorch) -----------------------------------------------
class UnknownRuntimeError(ModelError, ValueError):
    """A runtime name that is not one of dashboard.models.runtimes.RUNTIMES."""


class RuntimeUnavailableError(ModelError):
    """A runtime that cannot run here (onnxruntime not installed) or refused for a model
    (export failed, or the parity gate found the exported model disagreeing with PyTorch)."""


# --- evaluation ---------------------------------------------------------------------------
class DatasetError(DashboardError):
    """A labelled dataset (folder, zip or CSV) cannot be used for an evaluation."""


class ArchiveRefusedError(DatasetError):
    """An uploaded archive breaks a safety rule (too many entries, too large, a bomb, bad names)."""
