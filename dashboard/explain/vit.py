"""Vision Transformers (transformers ViT/DeiT): attention rollout, and the token grid that
Grad-CAM's ``reshape_transform`` needs.

Attention rollout (Abnar & Zuidema, 2020; after jacobgil/vit-explain): fuse each layer's heads
(mean, max or min), drop the weakest links (``discard_ratio``), add the identity for the
residual path, normalise the rows, and multiply the layers together; the class token's row,
without the prefix tokens (class, DeiT's distillation token), is the heatmap over the patches.
Written here because grad-cam has no rollout; the attentions come from the model itself
(eager attention, ``output_attentions=True``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

HEAD_FUSIONS = ("mean", "max", "min")


def patch_grid(config) -> tuple[int, int]:
    """(rows, columns) of patches, from the config's image size and patch size."""
    def pair(value) -> tuple[int, int]:
        return (int(value[0]), int(value[1])) if isinstance(value, (list, tuple)) else (int(value), int(value))

    (ih, iw), (ph, pw) = pair(config.image_size), pair(config.patch_size)
    return ih // ph, iw // pw


def prefix_tokens(num_tokens: int, grid: tuple[int, int]) -> int:
    """Tokens before the patches: 1 for ViT (class), 2 for DeiT (class, distillation)."""
    prefix = num_tokens - grid[0] * grid[1]
    if prefix < 0:
        raise ValueError(f"{num_tokens} tokens cannot hold a {grid[0]}x{grid[1]} patch grid")
    return prefix


def reshape_transform(grid: tuple[int, int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Tokens (B, T, C) -> feature map (B, C, rows, columns), the prefix tokens dropped."""
    rows, cols = grid

    def transform(tensor: torch.Tensor) -> torch.Tensor:
        prefix = prefix_tokens(tensor.size(1), grid)
        patches = tensor[:, prefix:, :].reshape(tensor.size(0), rows, cols, tensor.size(2))
        return patches.permute(0, 3, 1, 2)

    return transform


def rollout(attentions: Sequence[torch.Tensor], prefix: int, head_fusion: str = "mean",
            discard_ratio: float = 0.0) -> torch.Tensor:
    """(B, patches): how much the class token draws on each patch through all layers."""
    import torch

    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"head fusion must be one of {HEAD_FUSIONS}, not {head_fusion!r}")
    first = attentions[0]
    batch, tokens = first.size(0), first.size(-1)
    eye = torch.eye(tokens, dtype=torch.float32, device=first.device)
    steps = []
    fuse = {"mean": torch.mean, "max": torch.amax, "min": torch.amin}[head_fusion]
    for attention in attentions:
        fused = fuse(attention.float(), dim=1)
        if discard_ratio > 0:
            # the weakest links: everything up to the drop-th smallest value of the matrix (a
            # threshold, not a sort: a full sort of 197x197 values per layer costs a forward)
            flat = fused.reshape(batch, -1)
            drop = int(flat.size(-1) * discard_ratio)
            if drop > 0:
                threshold = flat.kthvalue(drop, dim=-1, keepdim=True).values
                weak = flat <= threshold
                weak[:, 0] = False  # never cut the class token's link to itself
                fused = flat.masked_fill(weak, 0.0).reshape(batch, tokens, tokens)
        step = fused + eye
        steps.append(step / step.sum(dim=-1, keepdim=True))
    # Only the class token's row of A_L ... A_1 is needed: a row vector through the layers,
    # last to first (the same product, tokens times fewer operations than matrix products).
    row = torch.zeros(batch, 1, tokens, dtype=torch.float32, device=first.device)
    row[:, 0, 0] = 1.0
    for step in reversed(steps):
        row = row @ step
    return row[:, 0, prefix:]


def rollout_grid(model: torch.nn.Module, batch: torch.Tensor, grid: tuple[int, int],
                 head_fusion: str, discard_ratio: float) -> tuple[np.ndarray, torch.Tensor]:
    """The rollout of the first image on its patch grid (rows x columns, unnormalised) and the
    logits, from one forward pass of a transformers classifier with eager attention."""
    import torch

    with torch.inference_mode():
        output = model(pixel_values=batch, output_attentions=True)
        if not output.attentions:
            raise ValueError("the model returned no attentions (is its attention eager?)")
        prefix = prefix_tokens(output.attentions[0].size(-1), grid)
        mask = rollout(output.attentions, prefix, head_fusion, discard_ratio)[0]
    return mask.reshape(grid).cpu().numpy(), output.logits


def rollout_heatmap(model: torch.nn.Module, batch: torch.Tensor, grid: tuple[int, int],
                    head_fusion: str, discard_ratio: float) -> tuple[np.ndarray, torch.Tensor]:
    """Heatmap (float32, 0-1, the input's height x width) and logits (see rollout_grid)."""
    import cv2

    mask, logits = rollout_grid(model, batch, grid, head_fusion, discard_ratio)
    mask = mask - mask.min()
    mask = mask / (mask.max() + 1e-12)
    height, width = batch.shape[-2:]
    heatmap = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(heatmap, 0, 1), logits
