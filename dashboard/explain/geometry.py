"""Mapping a heatmap on the model input back onto the uploaded photo, and drawing the overlay.

Preprocessing resizes the photo (shorter side to S, or to an exact size) and centre-crops it.
The heatmap covers only the crop, so it goes back into the crop's box in the photo at the
photo's own aspect ratio; the border the crop removed has no heat and is drawn dimmed.
The recipe is read from the same objects that preprocess (``weights.transforms()``, the image
processor), so the mapping follows the model's real preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

DISPLAY_MAX_SIDE = 1024  # the overlay is drawn on the photo downscaled to this (pixels, longer side)
BORDER_DIM = 0.35  # brightness kept in the part of the photo the model never saw


@dataclass(frozen=True)
class Geometry:
    """Resize then centre-crop. ``short_side``: the shorter side goes to it (aspect kept);
    otherwise ``size`` (height, width) exactly. ``crop``: (height, width), or None."""

    short_side: int | None = None
    size: tuple[int, int] | None = None
    crop: tuple[int, int] | None = None

    def crop_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) of what the model saw, in the photo's pixels."""
        if self.short_side is not None:
            scale_x = scale_y = self.short_side / min(width, height)
        elif self.size is not None:
            scale_y, scale_x = self.size[0] / height, self.size[1] / width
        else:
            scale_x = scale_y = 1.0
        resized_w, resized_h = width * scale_x, height * scale_y
        crop_h, crop_w = self.crop if self.crop is not None else (resized_h, resized_w)
        crop_w, crop_h = min(crop_w, resized_w), min(crop_h, resized_h)  # no padding case here
        left = (resized_w - crop_w) / 2 / scale_x
        top = (resized_h - crop_h) / 2 / scale_y
        return left, top, left + crop_w / scale_x, top + crop_h / scale_y


def torchvision_geometry(transform: Any) -> Geometry:
    """From torchvision's ImageClassification preset (``weights.transforms()``)."""
    resize = list(transform.resize_size)
    crop = list(transform.crop_size)
    return Geometry(short_side=resize[0] if len(resize) == 1 else None,
                    size=(resize[0], resize[1]) if len(resize) == 2 else None,
                    crop=(crop[0], crop[-1]))


def _get(size: Any, key: str) -> Any:
    if size is None:
        return None
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)


def processor_geometry(processor: Any, input_size: tuple[int, int]) -> Geometry:
    """From a transformers image processor (its do_resize/size/do_center_crop/crop_size)."""
    size = getattr(processor, "size", None) if getattr(processor, "do_resize", True) else None
    short, height, width = _get(size, "shortest_edge"), _get(size, "height"), _get(size, "width")
    crop = None
    if getattr(processor, "do_center_crop", False):
        crop_size = getattr(processor, "crop_size", None)
        if _get(crop_size, "height"):
            crop = (int(_get(crop_size, "height")), int(_get(crop_size, "width")))
    if height and width:
        return Geometry(size=(int(height), int(width)), crop=crop)
    if short:
        return Geometry(short_side=int(short), crop=crop or tuple(input_size))
    return Geometry(size=tuple(input_size), crop=crop)  # unknown recipe: the input size, stretched


def display_image(image: Image.Image) -> Image.Image:
    """The photo as shown under the heatmap: RGB, longer side at most DISPLAY_MAX_SIDE."""
    from PIL import Image as PILImage

    image = image.convert("RGB")
    scale = DISPLAY_MAX_SIDE / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, PILImage.Resampling.BILINEAR)
    return image


def map_to_photo(heatmap: np.ndarray, geometry: Geometry, original_size: tuple[int, int],
                 shown_size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The model-input heatmap placed into the crop box of a photo of ``shown_size`` (w, h).

    ``original_size`` is the size preprocessing saw; the shown photo is the same picture scaled.
    Returns the photo-sized heatmap (zero outside the box) and the box in shown pixels.
    """
    import cv2

    (orig_w, orig_h), (shown_w, shown_h) = original_size, shown_size
    left, top, right, bottom = geometry.crop_box(orig_w, orig_h)
    sx, sy = shown_w / orig_w, shown_h / orig_h
    box = (max(0, round(left * sx)), max(0, round(top * sy)),
           min(shown_w, round(right * sx)), min(shown_h, round(bottom * sy)))
    box_w, box_h = max(1, box[2] - box[0]), max(1, box[3] - box[1])
    full = np.zeros((shown_h, shown_w), dtype=np.float32)
    resized = cv2.resize(heatmap.astype(np.float32), (box_w, box_h), interpolation=cv2.INTER_LINEAR)
    full[box[1]:box[1] + box_h, box[0]:box[0] + box_w] = np.clip(resized, 0, 1)[: shown_h - box[1], : shown_w - box[0]]
    return full, box


def draw_overlay(image: Image.Image, heatmap: np.ndarray, box: tuple[int, int, int, int],
                 opacity: float) -> Image.Image:
    """grad-cam's show_cam_on_image inside the box; the cropped-away border dimmed, no heat."""
    from PIL import Image as PILImage
    from pytorch_grad_cam.utils.image import show_cam_on_image

    rgb = np.asarray(image, dtype=np.float32) / 255.0
    opacity = float(min(1.0, max(0.0, opacity)))
    blended = show_cam_on_image(rgb, heatmap, use_rgb=True, image_weight=1.0 - opacity)
    out = (rgb * 255.0 * BORDER_DIM).astype(np.uint8)
    left, top, right, bottom = box
    out[top:bottom, left:right] = blended[top:bottom, left:right]
    return PILImage.fromarray(out)
