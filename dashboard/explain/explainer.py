"""One Explainer per loaded model: a private copy of the model that hooks can never leak from.

grad-cam registers forward hooks on the target layer; on the model that serves classification
they would also fire during concurrent classification forwards and mix activations. So each
explainer owns a copy of the module tree whose parameters share the served model's weight
storage (no second copy of the weights; nothing is added to the memory budget). Its
parameters do not require grad, except the target layer's, so backward stops there. For
transformers the copy (and only the copy) switches to eager attention, which is what returns
attentions; the served model keeps SDPA. Calls on one explainer are serialised by its lock;
every call builds and releases its own CAM object.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dashboard.errors import UnsupportedMethodError
from dashboard.explain import geometry as geo
from dashboard.explain.record import (
    DEFAULT_OPACITY,
    METHODS,
    ExplainedClass,
    Explanation,
    Target,
    resolve_method,
    resolve_target,
)

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from dashboard.models.classifier import Classifier
    from dashboard.models.registry import ModelSpec


@dataclass(frozen=True)
class RolloutOptions:
    head_fusion: str = "mean"
    discard_ratio: float = 0.9


def shared_weight_copy(model: torch.nn.Module, trainable: Sequence[torch.nn.Parameter] = ()) -> torch.nn.Module:
    """A deep copy of the module tree whose parameters and buffers share storage with ``model``.

    The copy's parameters are new Parameter objects (so requires_grad and .grad are its own);
    only those in ``trainable`` (parameters of ``model``) require grad.
    """
    import torch

    wanted = {id(p) for p in trainable}
    memo: dict[int, Any] = {}
    for p in model.parameters():
        memo[id(p)] = torch.nn.Parameter(p.detach(), requires_grad=id(p) in wanted)
    for b in model.buffers():
        memo[id(b)] = b
    return copy.deepcopy(model, memo)


def find_module(root: torch.nn.Module, path: str) -> torch.nn.Module:
    """``"layer4.-1"`` -> root.layer4[-1]; negative indices count from the end."""
    module = root
    for part in path.split("."):
        if part.lstrip("-").isdigit():
            module = module[int(part)]  # type: ignore[index]
        else:
            module = getattr(module, part)
    return module


def logits_only(model: torch.nn.Module) -> torch.nn.Module:
    """A transformers classifier whose forward returns the logits tensor (grad-cam's targets
    index the model's output)."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.inner(pixel_values=pixel_values).logits

    return LogitsOnly(model)


class Explainer:
    """Heatmaps for one model. Build with ``for_classifier`` (served models) or directly."""

    def __init__(
        self, *, key: str, display_name: str, family: str, model: torch.nn.Module,
        preprocess: Callable[[list[Image.Image]], torch.Tensor], labels: Sequence[str],
        geometry: geo.Geometry, target_layer: str | None, device: Any,
        rollout: RolloutOptions = RolloutOptions(), hf_config: Any = None,
    ) -> None:
        self.key, self.display_name, self.family = key, display_name, family
        self.labels = tuple(labels)
        self.geometry = geometry
        self.device = device
        self.rollout_options = rollout
        self._preprocess = preprocess
        self._lock = threading.Lock()
        self._layer_error: str | None = None
        layer = None
        if target_layer is not None:
            try:
                layer = find_module(model, target_layer)
            except (AttributeError, IndexError, TypeError):
                self._layer_error = f"{display_name} has no layer {target_layer!r} to read a heatmap from"
        else:
            self._layer_error = f"no heatmap layer is known for {display_name}'s architecture"
        trainable = list(layer.parameters()) if layer is not None else []
        copied = shared_weight_copy(model, trainable)
        self._hf_config = None
        if hf_config is not None:  # a transformers model: eager attention on the copy only
            copied.set_attn_implementation("eager")
            self._hf_config = copied.config
            self._hf_model = copied
            self._model = logits_only(copied)
        else:
            self._model = copied
        self._layer = find_module(copied, target_layer) if layer is not None else None
        self._model.eval()
        import pytorch_grad_cam  # noqa: F401  # its (slow) first import is not a request's time

    @classmethod
    def for_classifier(cls, classifier: Classifier, spec: ModelSpec, rollout: RolloutOptions) -> Explainer:
        """The explainer of a served classifier, with the preprocessing geometry of its recipe."""
        hf_config = getattr(classifier.model, "config", None) if spec.backend == "transformers" else None
        target_layer = spec.target_layer
        if spec.backend == "torchvision":
            from dashboard.models.torchvision_backend import weights_for

            geometry = geo.torchvision_geometry(weights_for(spec).transforms())
        else:
            from transformers import AutoImageProcessor

            revision = None if spec.weights == "local" else spec.weights
            try:  # the processor the classifier was loaded with, read again from the local cache
                processor = AutoImageProcessor.from_pretrained(spec.source, revision=revision,
                                                               local_files_only=True)
                geometry = geo.processor_geometry(processor, classifier.info.input_size)
            except (OSError, ValueError):
                geometry = geo.Geometry(size=classifier.info.input_size)  # the whole photo, stretched
            if target_layer is None:  # a custom Hub id: the ViT-like layout, if it has one
                prefix = getattr(classifier.model, "base_model_prefix", "")
                target_layer = f"{prefix}.layers.-1.layernorm_before"
        # the recipe itself, not classifier.preprocess: the explainer must not keep its classifier
        # alive (the service keys explainers weakly by classifier, so eviction frees both)
        return cls(key=spec.key, display_name=spec.display_name, family=spec.family,
                   model=classifier.model, preprocess=classifier._transform, labels=classifier.labels,
                   geometry=geometry, target_layer=target_layer, device=classifier.device,
                   rollout=rollout, hf_config=hf_config)

    # ------------------------------------------------------------------------------------
    def method(self, method: str | None) -> str:
        return resolve_method(method, self.family, self.display_name)

    def target(self, target: Target) -> int | None:
        return resolve_target(target, self.labels, self.display_name)

    def explain(self, image: Image.Image, target: Target = None, method: str | None = None,
                opacity: float = DEFAULT_OPACITY) -> Explanation:
        """Where this model looks in ``image`` for class ``target`` (None: its top-1)."""
        start = time.perf_counter()
        method = self.method(method)
        index = self.target(target)
        if method != "rollout" and self._layer is None:
            raise UnsupportedMethodError(
                f"{METHODS[method][0]} is not available: {self._layer_error}. Try attention rollout."
            )
        batch = self._preprocess([image]).to(self.device)
        with self._lock:
            t0 = time.perf_counter()
            heatmap, logits = self._heatmap(batch, index, method)
            if self.device.type == "cuda":
                import torch

                torch.cuda.synchronize(self.device)
            ms = (time.perf_counter() - t0) * 1e3
        probs = logits.float().softmax(dim=-1)[0]
        if index is None:
            index = int(probs.argmax())
        shown = geo.display_image(image)
        photo_heatmap, box = geo.map_to_photo(heatmap, self.geometry, image.size, shown.size)
        overlay = geo.draw_overlay(shown, photo_heatmap, box, opacity)
        return Explanation(
            model_key=self.key, model_name=self.display_name, method=method,
            target=ExplainedClass(index, self.labels[index], float(probs[index])),
            heatmap=photo_heatmap, overlay=overlay, image=shown, crop_box=box, ms=ms,
            total_ms=(time.perf_counter() - start) * 1e3, device=str(self.device),
            class_specific=METHODS[method][1],
        )

    def _heatmap(self, batch: torch.Tensor, index: int | None, method: str) -> tuple[np.ndarray, Any]:
        from dashboard.explain import cnn, vit

        if method == "rollout":
            if self._hf_config is None or not hasattr(self._hf_config, "patch_size"):
                raise UnsupportedMethodError(
                    f"Attention rollout needs a Vision Transformer; {self.display_name} is not one.")
            grid = vit.patch_grid(self._hf_config)
            opts = self.rollout_options
            return vit.rollout_heatmap(self._hf_model, batch, grid, opts.head_fusion, opts.discard_ratio)
        reshape = vit.reshape_transform(vit.patch_grid(self._hf_config)) if self._hf_config is not None else None
        return cnn.cam_heatmap(self._model, self._layer, batch, index, method, reshape)
