"""The named perturbations: each equals the library call it wraps, with the documented parameter."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as F
from PIL import Image, ImageFilter

from dashboard import perturb
from dashboard.errors import DashboardError, PerturbationError

STRENGTHS = (0.25, 0.5, 1.0)


@pytest.fixture(scope="module")
def image(photo) -> Image.Image:
    with Image.open(photo) as im:
        return im.convert("RGB").resize((160, 120))


def _t(im: Image.Image) -> torch.Tensor:
    return F.pil_to_tensor(im)


def _pil(t: torch.Tensor) -> Image.Image:
    return F.to_pil_image(t)


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return Image.open(BytesIO(buf.getvalue())).convert("RGB")


def _noise(im: Image.Image, std: float, seed: int) -> Image.Image:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        noisy = F.gaussian_noise(F.to_dtype(_t(im), torch.float32, scale=True), sigma=std, clip=True)
    return _pil(F.to_dtype(noisy, torch.uint8, scale=True))


def _pixelate(im: Image.Image, factor: float) -> Image.Image:
    w, h = im.size
    small = F.resize(im, [max(1, round(h / factor)), max(1, round(w / factor))], interpolation=F.InterpolationMode.BOX)
    return F.resize(small, [h, w], interpolation=F.InterpolationMode.NEAREST)


def _occlude(im: Image.Image, side: int, cx: int, cy: int) -> Image.Image:
    top, left = max(0, cy - side // 2), max(0, cx - side // 2)
    h, w = min(im.height, cy - side // 2 + side) - top, min(im.width, cx - side // 2 + side) - left
    return _pil(F.erase(_t(im), top, left, h, w, torch.tensor(128, dtype=torch.uint8)))


# The documented mapping, written out: strength -> (the library call, the physical parameter).
EXPECTED = {
    "gaussian_blur": (lambda im, s: im.filter(ImageFilter.GaussianBlur(radius=8 * s)), lambda s: 8 * s),
    "gaussian_noise": (lambda im, s: _noise(im, 0.5 * s, 7), lambda s: 0.5 * s),
    "rotation": (lambda im, s: F.rotate(im, 180 * s, interpolation=F.InterpolationMode.BILINEAR),
                 lambda s: 180 * s),
    "brightness": (lambda im, s: F.adjust_brightness(im, 1 + 2 * s), lambda s: 1 + 2 * s),
    "contrast": (lambda im, s: F.adjust_contrast(im, 1 - s), lambda s: 1 - s),
    "jpeg_compression": (lambda im, s: _jpeg(im, round(100 - 99 * s)), lambda s: round(100 - 99 * s)),
    "pixelate": (lambda im, s: _pixelate(im, 1 + 15 * s), lambda s: 1 + 15 * s),
    # 160x120 image, centre (80, 60): the patch side is the strength times the short side (120)
    "occlusion": (lambda im, s: _occlude(im, round(120 * s), 80, 60), lambda s: s),
}


def test_every_perturbation_is_covered_and_named_for_imagenet_c():
    assert set(EXPECTED) == set(perturb.PERTURBATIONS)
    names = {p["ImageNet-C"] for p in perturb.catalogue()}
    assert {"gaussian_blur", "gaussian_noise", "brightness", "contrast", "jpeg_compression", "pixelate"} <= names


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("strength", STRENGTHS)
def test_perturbation_equals_the_library_call(image, name, strength):
    call, parameter = EXPECTED[name]
    out = perturb.perturb(image, name, strength, seed=7)
    expected = call(image, strength)
    assert out.image.size == image.size and out.image.mode == "RGB"
    assert np.array_equal(np.asarray(out.image), np.asarray(expected)), f"{name} at {strength}"
    assert out.value == pytest.approx(parameter(strength), abs=1e-3)
    assert not np.array_equal(np.asarray(out.image), np.asarray(image)), "the perturbation changed nothing"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_strength_zero_returns_the_image_unchanged(image, name):
    out = perturb.perturb(image, name, 0.0, seed=3)
    assert out.image is image and out.strength == 0


def test_same_seed_same_noise_other_seed_other_noise(image):
    a = np.asarray(perturb.perturb(image, "gaussian_noise", 0.4, seed=11).image)
    b = np.asarray(perturb.perturb(image, "gaussian_noise", 0.4, seed=11).image)
    c = np.asarray(perturb.perturb(image, "gaussian_noise", 0.4, seed=12).image)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    torch.manual_seed(5)
    before = torch.rand(3)
    torch.manual_seed(5)
    perturb.perturb(image, "gaussian_noise", 0.4, seed=99)
    assert torch.equal(torch.rand(3), before), "the noise must not disturb torch's global generator"


def test_aliases_and_cache_keys(image):
    assert perturb.resolve("blur").name == "gaussian_blur" and perturb.resolve("JPEG").name == "jpeg_compression"
    a = perturb.perturb(image, "occlusion", 0.3, x=0.2, y=0.8)
    b = perturb.perturb(image, "occlusion", 0.3, x=0.8, y=0.2)
    c = perturb.perturb(image, "occlusion", 0.4, x=0.2, y=0.8)
    assert len({a.cache_key, b.cache_key, c.cache_key}) == 3
    assert a.label == "patch side 0.3 of the short side"
    assert perturb.perturb(image, "blur", 0.5).label == "sigma 4 px"


def test_patch_at_a_corner_is_cut_to_the_border(image):
    out = np.asarray(perturb.perturb(image, "occlusion", 0.5, x=1.0, y=1.0).image)
    assert (out[-30:, -30:] == 128).all() and not (out[:60, :80] == 128).all()


@pytest.mark.parametrize("call, message", [
    (lambda im: perturb.perturb(im, "blur", 1.5), "between 0 and 1"),
    (lambda im: perturb.perturb(im, "blur", -0.1), "between 0 and 1"),
    (lambda im: perturb.perturb(im, "blur", float("nan")), "finite"),
    (lambda im: perturb.perturb(im, "blur", "a lot"), "must be a number"),
    (lambda im: perturb.perturb(im, "snow", 0.5), "Unknown perturbation 'snow'. Choose one of: gaussian_blur"),
    (lambda im: perturb.perturb(im, "occlusion", 0.5, x=1.2, y=0.5), "centred inside the image"),
    (lambda im: perturb.perturb(im, "occlusion", 0.5, x=0.5, y=-0.01), "centred inside the image"),
    (lambda im: perturb.perturb(im, "noise", 0.5, seed=-1), "seed must be a whole number"),
    (lambda im: perturb.perturb(im, "noise", 0.5, seed=1.5), "seed must be a whole number"),
    (lambda im: perturb.check_steps(0, 24), "from 2 to 24 \\(got 0\\)"),
    (lambda im: perturb.check_steps(1000, 24), "from 2 to 24 \\(got 1000\\)"),
    (lambda im: perturb.check_models([]), "between 1 and 4 models"),
    (lambda im: perturb.check_models(list("abcde")), "between 1 and 4 models"),
])
def test_bad_parameters_get_a_clear_message(image, call, message):
    with pytest.raises(PerturbationError, match=message) as info:
        call(image)
    assert isinstance(info.value, DashboardError)


def test_sweep_strengths():
    assert perturb.strengths(8)[0] == 0 and perturb.strengths(8)[-1] == 1 and len(perturb.strengths(8)) == 8
    assert perturb.first_change([3, 3, 3]) is None and perturb.first_change([3, 3, 5, 3]) == 2
