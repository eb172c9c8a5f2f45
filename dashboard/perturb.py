"""Named image perturbations (strength 0-1 -> a physical parameter) and the sweep's bookkeeping.

Each perturbation is one call of torchvision.transforms.v2.functional or of Pillow (JPEG encoder,
GaussianBlur)
on the decoded, checked RGB image; nothing here parses user bytes (dashboard/images.py does).
The names follow the corruption families of ImageNet-C (Hendrycks & Dietterich, 2019), so that a
teacher can connect a strength here to a severity there; rotation and occlusion are not in
ImageNet-C (rotation is in its companion ImageNet-P, occlusion is "cutout").

Strength 0 always returns the image unchanged (the same object), so the clean prediction and the
strength-0 prediction are the same by construction.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from io import BytesIO
from typing import TYPE_CHECKING, Any

import numpy as np

from dashboard.errors import PerturbationError

if TYPE_CHECKING:
    import torch
    from PIL import Image

DEFAULT_STEPS = 8
DEFAULT_SEED = 0
MAX_MODELS = 4
GREY = 0.5  # the occlusion patch's value on every channel (mid grey, 0-1 scale)
_SEED_MAX = 2**31 - 1
# torchvision's gaussian_noise draws from torch's global generator and takes no generator of its
# own: the seeded draw runs under fork_rng (the global state is restored afterwards) and this
# lock (so that two requests never interleave between seeding and drawing).
_NOISE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Perturbation:
    """One named perturbation: what strength 1 means, in the unit a person can check."""

    name: str
    title: str
    parameter: str  # the physical parameter and its unit, e.g. "sigma (pixels)"
    at_zero: float  # the parameter's value at strength 0 (no change)
    at_one: float  # its value at strength 1
    imagenet_c: str  # the ImageNet-C corruption (or the nearest relative) it corresponds to
    integer: bool = False
    apply: Callable[..., Image.Image] = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    def value(self, strength: float) -> float:
        """The physical parameter at this strength (linear between at_zero and at_one)."""
        v = self.at_zero + (self.at_one - self.at_zero) * strength
        return float(round(v)) if self.integer else round(v, 4)

    def describe(self, strength: float) -> str:
        v = self.value(strength)
        shown = f"{v:.0f}" if self.integer else f"{v:.3g}"
        return f"{self.parameter.split(' (')[0]} {shown}{_unit(self.parameter)}"


def _unit(parameter: str) -> str:
    if "(" not in parameter:
        return ""
    unit = parameter.split("(", 1)[1].rstrip(")")
    return {"pixels": " px", "degrees": "°", "x": "×", "fraction of the short side": " of the short side",
            "0-1 scale": ""}.get(unit, f" {unit}")


@dataclass(frozen=True)
class Perturbed:
    """A perturbed image and everything needed to reproduce it (and to key a result cache)."""

    image: Image.Image
    perturbation: str
    strength: float
    value: float  # the physical parameter (see Perturbation.parameter)
    seed: int
    params: tuple[tuple[str, float], ...] = ()  # extra parameters (the occlusion patch's position)

    @property
    def cache_key(self) -> tuple:
        """Everything the pixels depend on (the seed only matters to the noise)."""
        seed = self.seed if self.perturbation == "gaussian_noise" else None
        return ("perturbed", self.perturbation, self.strength, seed, self.params)

    @property
    def description(self) -> str:
        return f"{PERTURBATIONS[self.perturbation].title}, strength {self.strength:g} ({self.label})"

    @property
    def label(self) -> str:
        return PERTURBATIONS[self.perturbation].describe(self.strength)


# --- the perturbations: each is one library call ------------------------------------------------
def _tensor(image: Image.Image) -> torch.Tensor:
    import torchvision.transforms.v2.functional as F

    return F.pil_to_tensor(image)  # uint8, C x H x W


def _pil(tensor: torch.Tensor) -> Image.Image:
    import torchvision.transforms.v2.functional as F

    return F.to_pil_image(tensor)


def _gaussian_blur(image: Image.Image, sigma: float, **_: Any) -> Image.Image:
    """Pillow's GaussianBlur, whose radius is the standard deviation. Pillow approximates the
    Gaussian with three box blurs, in constant time whatever sigma: torchvision's exact kernel
    (gaussian_blur, 49 taps at sigma 8) took ~0.4 s on a 640-pixel photo, too slow to follow a slider."""
    from PIL import ImageFilter

    return image.filter(ImageFilter.GaussianBlur(radius=sigma))


def _gaussian_noise(image: Image.Image, std: float, seed: int = DEFAULT_SEED, **_: Any) -> Image.Image:
    import torch
    import torchvision.transforms.v2.functional as F

    x = F.to_dtype(_tensor(image), torch.float32, scale=True)
    with _NOISE_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        noisy = F.gaussian_noise(x, mean=0.0, sigma=std, clip=True)
    return _pil(F.to_dtype(noisy, torch.uint8, scale=True))


# Rotation, brightness and contrast hand the PIL image itself to torchvision, whose PIL kernels
# (Image.rotate, ImageEnhance) run in C without float copies: 3-10x faster than its tensor kernels
# on a 640-pixel photo, which a slider's live preview needs.
def _rotation(image: Image.Image, degrees: float, **_: Any) -> Image.Image:
    import torchvision.transforms.v2.functional as F

    return F.rotate(image, degrees, interpolation=F.InterpolationMode.BILINEAR)


def _brightness(image: Image.Image, factor: float, **_: Any) -> Image.Image:
    import torchvision.transforms.v2.functional as F

    return F.adjust_brightness(image, factor)


def _contrast(image: Image.Image, factor: float, **_: Any) -> Image.Image:
    import torchvision.transforms.v2.functional as F

    return F.adjust_contrast(image, factor)


def _jpeg(image: Image.Image, quality: float, **_: Any) -> Image.Image:
    from PIL import Image as PILImage

    buffer = BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with PILImage.open(buffer, formats=["JPEG"]) as decoded:  # our own encoder's output, not user bytes
        return decoded.convert("RGB")


def _pixelate(image: Image.Image, factor: float, **_: Any) -> Image.Image:
    """Down by ``factor`` (area-averaging, like ImageNet-C's BOX), back up with nearest: blocks."""
    import torchvision.transforms.v2.functional as F

    w, h = image.size
    small = [max(1, round(h / factor)), max(1, round(w / factor))]
    down = F.resize(image, small, interpolation=F.InterpolationMode.BOX)
    return F.resize(down, [h, w], interpolation=F.InterpolationMode.NEAREST)


def occlusion_box(size: tuple[int, int], side_fraction: float, x: float, y: float) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a square patch ``side_fraction`` of the short side wide,
    centred at (x, y) (fractions of width and height), cut to the image's border."""
    w, h = size
    side = max(1, round(side_fraction * min(w, h)))
    left = round(x * w - side / 2)
    top = round(y * h - side / 2)
    right, bottom = min(w, left + side), min(h, top + side)
    left, top = max(0, left), max(0, top)
    return top, left, max(0, bottom - top), max(0, right - left)


def _occlusion(image: Image.Image, side: float, x: float = 0.5, y: float = 0.5, **_: Any) -> Image.Image:
    """Pillow's paste of a flat colour into the box: the same pixels as torchvision's erase (the
    test compares them), without a tensor round trip."""
    top, left, height, width = occlusion_box(image.size, side, x, y)
    out = image.copy()
    out.paste((round(GREY * 255),) * 3, (left, top, left + width, top + height))
    return out


_LIST = (
    Perturbation("gaussian_blur", "Gaussian blur", "sigma (pixels)", 0.0, 8.0, "gaussian_blur",
                 apply=_gaussian_blur),
    Perturbation("gaussian_noise", "Gaussian noise", "standard deviation (0-1 scale)", 0.0, 0.5,
                 "gaussian_noise", apply=_gaussian_noise),
    Perturbation("rotation", "Rotation", "angle (degrees)", 0.0, 180.0, "rotate (ImageNet-P)",
                 apply=_rotation),
    Perturbation("brightness", "Brightness", "brightness factor (x)", 1.0, 3.0, "brightness",
                 apply=_brightness),
    Perturbation("contrast", "Contrast", "contrast factor (x)", 1.0, 0.0, "contrast", apply=_contrast),
    Perturbation("jpeg_compression", "JPEG compression", "JPEG quality", 100.0, 1.0, "jpeg_compression",
                 integer=True, apply=_jpeg),
    Perturbation("pixelate", "Pixelate (downscale)", "downscaling factor (x)", 1.0, 16.0, "pixelate",
                 apply=_pixelate),
    Perturbation("occlusion", "Occlusion (grey patch)", "patch side (fraction of the short side)", 0.0, 1.0,
                 "cutout (not in ImageNet-C)", apply=_occlusion),
)
PERTURBATIONS: dict[str, Perturbation] = {p.name: p for p in _LIST}
# Short names for the command line and the API ("--perturbation blur").
ALIASES = {"blur": "gaussian_blur", "noise": "gaussian_noise", "rotate": "rotation", "jpeg": "jpeg_compression",
           "downscale": "pixelate", "pixelation": "pixelate", "occlude": "occlusion", "patch": "occlusion"}


# --- validation ---------------------------------------------------------------------------------
def resolve(name: str | None) -> Perturbation:
    """A perturbation by name or alias, or an error listing the valid names."""
    key = str(name or "").strip().lower().replace("-", "_").replace(" ", "_")
    key = ALIASES.get(key, key)
    if key not in PERTURBATIONS:
        shown = str(name)[:40]
        raise PerturbationError(f"Unknown perturbation {shown!r}. Choose one of: {', '.join(PERTURBATIONS)}.")
    return PERTURBATIONS[key]


def check_strength(strength: Any) -> float:
    value = _number(strength, "The strength")
    if not 0.0 <= value <= 1.0:
        raise PerturbationError(f"The strength must be between 0 and 1 (got {value:g}).")
    return value


def check_seed(seed: Any) -> int:
    if seed is None or seed == "":
        return DEFAULT_SEED
    value = _number(seed, "The seed")
    if value != int(value) or not 0 <= value <= _SEED_MAX:
        raise PerturbationError(f"The seed must be a whole number from 0 to {_SEED_MAX} (got {value:g}).")
    return int(value)


def check_steps(steps: Any, max_steps: int) -> int:
    value = _number(steps, "The number of steps")
    if value != int(value) or not 2 <= value <= max_steps:
        raise PerturbationError(
            f"The number of steps must be a whole number from 2 to {max_steps} (got {value:g}).")
    return int(value)


def check_position(x: Any, y: Any) -> tuple[float, float]:
    """The occlusion patch's centre, as fractions of the width and height: inside the image."""
    px, py = _number(x, "The patch position x"), _number(y, "The patch position y")
    if not (0.0 <= px <= 1.0 and 0.0 <= py <= 1.0):
        raise PerturbationError(
            f"The occlusion patch must be centred inside the image: x and y are fractions of the width "
            f"and height, from 0 to 1 (got x={px:g}, y={py:g}).")
    return px, py


def check_models(keys: Any) -> list[str]:
    keys = list(dict.fromkeys(k for k in (keys or []) if str(k).strip()))
    if not 1 <= len(keys) <= MAX_MODELS:
        raise PerturbationError(f"Choose between 1 and {MAX_MODELS} models (you chose {len(keys)}).")
    return keys


def _number(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PerturbationError(f"{what} must be a number (got {str(value)[:40]!r}).") from None
    if not math.isfinite(number):
        raise PerturbationError(f"{what} must be a finite number.")
    return number


# --- the public calls ---------------------------------------------------------------------------
def perturb(image: Image.Image, name: str, strength: float, seed: int | None = DEFAULT_SEED,
            x: float = 0.5, y: float = 0.5) -> Perturbed:
    """Apply one named perturbation at ``strength`` (0-1); strength 0 returns ``image`` itself.

    ``seed`` matters only for noise; ``x``/``y`` (the patch centre, fractions of width and height)
    only for occlusion. Every argument is checked: a bad one raises PerturbationError.
    """
    p = resolve(name)
    strength = check_strength(strength)
    seed = check_seed(seed)
    params: tuple[tuple[str, float], ...] = ()
    if p.name == "occlusion":
        x, y = check_position(x, y)
        params = (("x", x), ("y", y))
    out = image if strength == 0 else p.apply(image, p.value(strength), seed=seed, x=x, y=y)
    return Perturbed(out, p.name, strength, p.value(strength), seed, params)


def strengths(steps: int) -> list[float]:
    """``steps`` evenly spaced strengths from 0 (the clean image) to 1."""
    return [round(float(s), 6) for s in np.linspace(0.0, 1.0, steps)]


def first_change(top1: list[int]) -> int | None:
    """The index of the first step whose top-1 differs from step 0's (the clean image's), or None."""
    return next((i for i, t in enumerate(top1) if t != top1[0]), None)


def catalogue() -> list[Mapping[str, Any]]:
    """The perturbations as records, for the README, the CLI's help and the tab's info text."""
    return [{"name": p.name, "title": p.title, "parameter": p.parameter, "strength 0": p.at_zero,
             "strength 1": p.at_one, "ImageNet-C": p.imagenet_c} for p in _LIST]


def for_display(image: Image.Image, max_side: int = 640) -> Image.Image:
    """A copy no larger than ``max_side`` for the page (the models see the full image)."""
    if max(image.size) <= max_side:
        return image
    shown = image.copy()
    shown.thumbnail((max_side, max_side))
    return shown
