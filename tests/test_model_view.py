"""What the model sees (issue 9, item 9): each model's own resize and crop, un-normalised."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image


def _gradient(width: int, height: int) -> bytes:
    """A wide image whose every column and row differs, so a wrong crop or squash shows."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    rgb = np.concatenate([np.broadcast_to(x, (height, width, 1)), np.broadcast_to(y, (height, width, 1)),
                          np.full((height, width, 1), 128, np.float32)], axis=2)
    buffer = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8), "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def test_cnn_view_is_the_resized_centre_crop(service):
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    data = _gradient(600, 300)
    view, info = service.model_view(data, "resnet18", filename="wide.png")
    assert view.size == (224, 224) and info.input_size == (224, 224)
    image = Image.open(io.BytesIO(data)).convert("RGB")
    expected = F.center_crop(F.resize(image, 256, InterpolationMode.BILINEAR, antialias=True), 224)
    diff = np.abs(np.asarray(view, np.int16) - np.asarray(expected, np.int16))
    assert diff.max() <= 1  # the same pixels, up to rounding through float32
    # the crop cut the sides: the view's red (x) channel starts well above the photo's 0
    assert np.asarray(view)[:, 0, 0].mean() > 40


def test_vit_view_is_the_squashed_photo(service):
    data = _gradient(600, 300)
    view, _ = service.model_view(data, "google/vit-base-patch16-224", filename="wide.png")
    expected = Image.open(io.BytesIO(data)).convert("RGB").resize((224, 224), Image.BILINEAR)
    diff = np.abs(np.asarray(view, np.int16) - np.asarray(expected, np.int16))
    assert view.size == (224, 224) and diff.max() <= 2
    assert np.asarray(view)[:, 0, 0].mean() < 10  # nothing cropped: the left edge is still there


def test_view_on_onnx_runtime_matches_pytorch_and_bad_input_is_refused(service, photo):
    from dashboard.errors import DashboardError

    torch_view, _ = service.model_view(photo, "resnet18")
    onnx_view, info = service.model_view(photo, "resnet18", runtime="onnxruntime")
    assert info.runtime == "onnxruntime" and np.array_equal(np.asarray(torch_view), np.asarray(onnx_view))
    with pytest.raises(DashboardError):
        service.model_view(b"not an image", "resnet18", filename="x.png")
    with pytest.raises(DashboardError):
        service.model_view(photo, "no-such-model")
