"""A labelled image set and a model whose right answers are known: the dominant colour -> class.

Shared by the evaluation tests (unit, CLI, app, browser) and the benchmark. The model is a real
``Classifier`` around a small torch module, so it runs through the same engines as real models.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30)}
LABELS = ("red, crimson, scarlet", "green", "blue, azure", "yellow")  # comma-separated synonyms
PER_CLASS = 10
# Deliberate mistakes in the folder: (folder, image number) -> the colour the image really has.
MISLABELLED = {("red", 0): "green", ("red", 1): "green", ("blue", 0): "yellow"}
EXPECTED_TOP1 = {"red": 8, "green": 10, "blue": 9, "yellow": 10}
EXPECTED_CONFUSIONS = [("red", "green", 2), ("blue", "yellow", 1)]


def colour_image(colour: str, seed: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """Mostly ``colour``, with noise and a grey patch, so the images are not all the same."""
    rng = np.random.default_rng(seed)
    w, h = size
    arr = np.clip(np.array(COLOURS[colour], np.int16) + rng.integers(-25, 26, (h, w, 3)), 0, 255).astype(np.uint8)
    arr[: h // 4, : w // 4] = 128
    return Image.fromarray(arr)


def image_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def labelled_folder(root: Path, per_class: int = PER_CLASS, classes=tuple(COLOURS), names=None) -> Path:
    """root/<class>/<nnn>.png in ImageFolder layout, with MISLABELLED applied."""
    names = names or {c: c for c in classes}
    for c in classes:
        folder = root / names[c]
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            real = MISLABELLED.get((c, i), c)
            (folder / f"{i:04d}.png").write_bytes(image_bytes(colour_image(real, hash((c, i)) % 2**32)))
    return root


def zip_folder(folder: Path, path: Path, top: str | None = "photos") -> Path:
    """The folder zipped as people do: everything under one top folder."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                rel = file.relative_to(folder).as_posix()
                zf.write(file, f"{top}/{rel}" if top else rel)
    return path


def colour_classifier(key: str = "colour-test", labels=LABELS, device: str = "cpu"):
    """A Classifier whose answer is the nearest of the four colours to the image's mean colour."""
    from torchvision.transforms import v2

    from dashboard.models.classifier import Classifier, ModelInfo

    model = ColourModel().eval().to(device)
    transform = v2.Compose([v2.ToImage(), v2.Resize((32, 32), antialias=True), v2.ToDtype(torch.float32, scale=True)])

    def preprocess(images):
        return torch.stack([transform(image) for image in images])

    info = ModelInfo(key=key, display_name=f"Colour model ({key})", backend="test", num_params=12,
                     weight_bytes=48, input_size=(32, 32), weights_id="known answers", num_classes=len(labels))
    return Classifier(info, model, preprocess, labels, torch.device(device))


class ColourModel(torch.nn.Module):
    """Logits: minus the distance from the image's mean colour to each class's colour."""

    def __init__(self) -> None:
        super().__init__()
        protos = torch.tensor([COLOURS[c] for c in ("red", "green", "blue", "yellow")], dtype=torch.float32) / 255
        self.register_buffer("prototypes", protos)

    def forward(self, x):
        return -20 * torch.cdist(x.mean(dim=(2, 3)), self.prototypes)


def onnx_twin(classifier, folder: Path):
    """The same classifier with an ONNX Runtime fp32 forward: exported by the dashboard's own
    exporter, run by its OnnxClassifier (preprocessing and labels shared), keyed KEY@onnxruntime."""
    import dataclasses

    from dashboard.models import onnx_backend

    path = Path(folder) / f"{classifier.info.key}.onnx"
    onnx_backend.export(classifier, path)
    session = onnx_backend.open_session(path, "cpu", 1)
    info = dataclasses.replace(classifier.info, display_name=f"{classifier.info.display_name} · ONNX Runtime",
                               runtime="onnxruntime", file_bytes=path.stat().st_size)
    return onnx_backend.OnnxClassifier(classifier, session, info, path)
