"""Class activation maps from the grad-cam package (pytorch-grad-cam): Grad-CAM, Grad-CAM++,
EigenCAM. Used for CNNs directly and for ViTs through a ``reshape_transform`` (see vit.py).

A CAM object registers hooks on its target layer and keeps activations on itself: one is
built per call and released at the end, and the caller owns the model it hooks (the
explainer's private copy, never the model that serves classification).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def cam_class(method: str):
    from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus

    return {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "eigencam": EigenCAM}[method]


def cam_heatmap(
    model: torch.nn.Module, target_layer: torch.nn.Module, batch: torch.Tensor, target: int | None,
    method: str = "gradcam", reshape_transform: Callable | None = None,
) -> tuple[np.ndarray, torch.Tensor]:
    """The heatmap (float32, 0-1, the input's height x width) of one image for class ``target``
    (None: the top-1), and the logits of the same forward pass.

    Gradients are needed, so this runs with grad enabled even when called from inside the
    classifier's inference_mode; the model's parameters need not require grad (only the target
    layer's do, so the backward pass stops there).
    """
    import torch
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam_type = cam_class(method)
    targets = None if target is None else [ClassifierOutputTarget(int(target))]
    with torch.inference_mode(False):
        batch = batch.detach().clone()  # an inference-mode tensor cannot enter autograd
        if method != "eigencam" and not any(p.requires_grad for p in target_layer.parameters()):
            batch.requires_grad_(True)  # a layer without weights: the gradient starts at the input
        grad_mode = torch.enable_grad() if method != "eigencam" else torch.no_grad()
        with grad_mode, cam_type(model=model, target_layers=[target_layer],
                                 reshape_transform=reshape_transform) as cam:
            heatmap = cam(input_tensor=batch, targets=targets)[0]
            logits = cam.outputs.detach()
            cam.outputs = None  # the CAM object is dropped; drop its graph now, not at GC
    return np.nan_to_num(heatmap.astype(np.float32)), logits
