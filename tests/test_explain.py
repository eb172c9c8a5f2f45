"""Heatmaps ("why this class?"): models built here whose right answer is known, an independent
attention rollout, the saliency sanity check, alignment on the photo, and concurrency."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from dashboard.errors import ExplainError, UnknownClassError, UnsupportedMethodError
from dashboard.explain import geometry as geo
from dashboard.explain import vit
from dashboard.explain.explainer import Explainer, RolloutOptions
from dashboard.models.classifier import Classifier, ModelInfo
from dashboard.models.registry import ModelSpec
from dashboard.service import ClassificationService
from dashboard.settings import resolve_settings

QUADRANTS = {"top-left": (0, 0), "top-right": (0, 1), "bottom-left": (1, 0), "bottom-right": (1, 1)}


# --- a small CNN whose answer is known ------------------------------------------------------------
class Gate(torch.nn.Module):
    """Zeroes a feature map outside one region (fractions of height and width)."""

    def __init__(self, rows: tuple[float, float], cols: tuple[float, float]) -> None:
        super().__init__()
        self.rows, self.cols = rows, cols

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        mask = torch.zeros(h, w)
        mask[int(self.rows[0] * h):int(self.rows[1] * h), int(self.cols[0] * w):int(self.cols[1] * w)] = 1
        return x * mask


def region_cnn(rows: tuple[float, float], cols: tuple[float, float]) -> torch.nn.Module:
    """Class 0's score depends only on the pixels of one region of the 224x224 input: features
    outside it are zeroed before the last block (the target layer), whose conv has no bias."""
    torch.manual_seed(0)
    first = torch.nn.Conv2d(3, 4, 3, padding=1)
    last = torch.nn.Conv2d(4, 4, 3, padding=1, bias=False)
    head = torch.nn.Linear(4, 2)
    with torch.no_grad():
        first.weight.abs_()
        first.bias.fill_(3.0)  # features are positive wherever the model looks
        last.weight.abs_()
        head.weight[0].fill_(1.0)  # class 0: more of those features, higher score
        head.weight[1].fill_(-1.0)
    model = torch.nn.Sequential()
    model.add_module("stem", torch.nn.Sequential(torch.nn.AvgPool2d(8), first, torch.nn.ReLU(), Gate(rows, cols)))
    model.add_module("block", torch.nn.Sequential(last, torch.nn.ReLU()))
    model.add_module("pool", torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()))
    model.add_module("head", head)
    return model.eval()


class CustomModelsService(ClassificationService):
    """The real service, with models built in the test registered under their own keys.

    They use ResNet-18's real preprocessing recipe (resize 256, centre crop 224), so the whole
    explain path runs as for a served torchvision model."""

    def __init__(self, models: dict[str, torch.nn.Module]) -> None:
        super().__init__(resolve_settings(device="cpu"))
        self.models = models

    def spec(self, key: str) -> ModelSpec:
        if key in self.models:
            return ModelSpec(key, f"test model {key}", "cnn", "torchvision", source="resnet18",
                             target_layer="block")
        return super().spec(key)

    def _load(self, key: str) -> Classifier:
        if key not in self.models:
            return super()._load(key)
        from torchvision.models import ResNet18_Weights

        transform = ResNet18_Weights.DEFAULT.transforms()
        info = ModelInfo(key, key, "torchvision", 0, 0, (224, 224), "test", 2)
        return Classifier(info, self.models[key], lambda ims: torch.stack([transform(i) for i in ims]),
                          ["looked-at", "other"], torch.device("cpu"))


def noise_photo(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def quadrant_mass(heatmap: np.ndarray, quadrant: tuple[int, int]) -> float:
    h, w = heatmap.shape
    r, c = quadrant
    part = heatmap[r * h // 2:(r + 1) * h // 2, c * w // 2:(c + 1) * w // 2]
    return float(part.sum() / heatmap.sum())


def test_gradcam_heat_lands_in_the_quadrant_the_model_reads_and_moves_with_it():
    halves = {0: (0.0, 0.5), 1: (0.5, 1.0)}
    models = {name: region_cnn(halves[r], halves[c]) for name, (r, c) in QUADRANTS.items()}
    service = CustomModelsService(models)
    photo = png(noise_photo(320, 320, seed=1))
    for name, quadrant in QUADRANTS.items():
        for method in ("gradcam", "gradcam++") if name == "top-right" else ("gradcam",):
            result = service.explain(photo, name, target="looked-at", method=method)
            assert result.target.index == 0 and result.target.label == "looked-at"
            masses = {other: quadrant_mass(result.heatmap, q) for other, q in QUADRANTS.items()}
            assert masses[name] >= 0.7, (name, method, masses)
            assert max(masses, key=masses.get) == name  # moving the region moved the heat


def test_wide_photo_heat_lands_in_its_centre_not_stretched():
    """A model that reads only the centre of its input: on an 800x200 photo the heat sits in the
    middle of the photo, as wide as the crop's centre, and the cropped-away sides are dimmed."""
    service = CustomModelsService({"centre": region_cnn((0.25, 0.75), (0.25, 0.75))})
    photo = noise_photo(800, 200, seed=2)
    result = service.explain(png(photo), "centre", target=0)
    heat = result.heatmap
    assert heat.shape == (200, 800) and heat.dtype == np.float32
    assert 0.0 <= heat.min() and heat.max() <= 1.0 and heat.max() > 0.5
    # preprocessing: shorter side 200 -> 256, centre crop 224: the model saw x in 400 +- 87.5
    left, top, right, bottom = result.crop_box
    assert (left, top, right, bottom) == (312, 12, 488, 188)
    columns = heat.sum(axis=0)
    centre_of_mass = float((columns * np.arange(800)).sum() / columns.sum())
    assert abs(centre_of_mass - 400) < 4
    # the model's centre half is 112 input px = 87.5 photo px wide: not stretched over 800 px
    assert columns[400 - 50:400 + 50].sum() / columns.sum() > 0.9
    assert heat[:, :left].max() == 0 and heat[:, right:].max() == 0
    # outside the crop: the photo dimmed, no heat colours
    overlay = np.asarray(result.overlay).astype(int)
    original = np.asarray(result.image).astype(int)
    expected = (original[:, :left] * geo.BORDER_DIM).astype(int)
    assert np.abs(overlay[:, :left] - expected).max() <= 1
    assert result.overlay.size == (800, 200)


def test_crop_box_follows_each_recipe():
    resnet = geo.Geometry(short_side=256, crop=(224, 224))
    assert resnet.crop_box(512, 256) == pytest.approx((144, 16, 368, 240))
    stretched = geo.Geometry(size=(224, 224))  # the ViT processor: whole photo, squashed
    assert stretched.crop_box(800, 200) == (0, 0, 800, 200)
    deit = geo.Geometry(size=(256, 256), crop=(224, 224))
    assert deit.crop_box(512, 256) == pytest.approx((32, 16, 480, 240))


def test_randomising_the_last_block_changes_the_heatmap(photo):
    """Adebayo et al. (2018): a saliency map that survives randomising the weights it claims to
    explain explains nothing. ResNet-18's last block (the target layer) is re-initialised."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    transform = torchvision.models.ResNet18_Weights.DEFAULT.transforms()

    def explainer() -> Explainer:
        return Explainer(key="r18", display_name="ResNet-18", family="cnn", model=model,
                         preprocess=lambda ims: torch.stack([transform(i) for i in ims]),
                         labels=[str(i) for i in range(10)], geometry=geo.torchvision_geometry(transform),
                         target_layer="layer4.-1", device=torch.device("cpu"))

    image = Image.open(photo).convert("RGB")
    first = explainer().explain(image, target=3)
    left, top, right, bottom = first.crop_box  # outside the crop there is no heat by construction
    before = first.heatmap[top:bottom, left:right]
    again = explainer().explain(image, target=3).heatmap[top:bottom, left:right]
    np.testing.assert_allclose(before, again, atol=1e-6)  # deterministic, so a change means something
    generator = torch.Generator().manual_seed(123)
    with torch.no_grad():  # Adebayo's randomisation: weights redrawn from a normal distribution
        for p in model.layer4[-1].parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * p.std().clamp_min(0.05))
    after = explainer().explain(image, target=3).heatmap[top:bottom, left:right]
    assert before.std() > 0 and after.std() > 0
    correlation = np.corrcoef(before.ravel(), after.ravel())[0, 1]
    assert correlation < 0.9, correlation


# --- attention rollout against an independent implementation ---------------------------------------
def independent_rollout(attentions: list[np.ndarray], prefix: int, fusion: str, discard: float) -> np.ndarray:
    """Abnar & Zuidema: identity added to each layer's head-fused attention, rows normalised,
    product over layers; the class token's row over the patches. Plain numpy, one image."""
    tokens = attentions[0].shape[-1]
    result = np.eye(tokens)
    for layer in attentions:
        fused = {"mean": np.mean, "max": np.max, "min": np.min}[fusion](layer[0].astype(np.float64), axis=0)
        if discard:
            flat = fused.flatten()
            order = np.argsort(flat, kind="stable")[: int(flat.size * discard)]
            flat[order[order != 0]] = 0.0
            fused = flat.reshape(tokens, tokens)
        a = fused + np.eye(tokens)
        a = a / a.sum(axis=1, keepdims=True)
        result = a @ result
    return result[0, prefix:]


def tiny_vit(kind: str):
    from transformers import DeiTConfig, DeiTForImageClassificationWithTeacher, ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    sizes = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64, num_labels=5)
    if kind == "vit":  # 32 / 8: a 4x4 grid behind one class token
        model = ViTForImageClassification(ViTConfig(image_size=32, patch_size=8, **sizes))
    else:  # DeiT: 48 / 16, a 3x3 grid behind the class and distillation tokens
        model = DeiTForImageClassificationWithTeacher(DeiTConfig(image_size=48, patch_size=16, **sizes))
    with torch.no_grad():  # tokens and position embeddings start at zero: ties would make the
        for p in model.parameters():  # weakest links to discard ambiguous
            p.add_(torch.randn(p.shape) * 0.2)
    return model.eval()


@pytest.mark.parametrize("kind,grid,prefix", [("vit", (4, 4), 1), ("deit", (3, 3), 2)])
@pytest.mark.parametrize("fusion,discard", [("mean", 0.0), ("max", 0.5), ("min", 0.9)])
def test_rollout_equals_an_independent_implementation(kind, grid, prefix, fusion, discard):
    import copy

    model = tiny_vit(kind)
    side = model.config.image_size
    assert vit.patch_grid(model.config) == grid
    explainer = Explainer(key=kind, display_name=kind, family="transformer", model=model,
                          preprocess=lambda ims: torch.rand(len(ims), 3, side, side, generator=torch.Generator().manual_seed(5)),
                          labels=[str(i) for i in range(5)], geometry=geo.Geometry(size=(side, side)),
                          target_layer=f"{model.base_model_prefix}.layers.-1.layernorm_before",
                          device=torch.device("cpu"), rollout=RolloutOptions(fusion, discard),
                          hf_config=model.config)
    pixels = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(5))
    mine, _ = vit.rollout_grid(explainer._hf_model, pixels, grid, fusion, discard)

    reference = copy.deepcopy(model)
    reference.set_attn_implementation("eager")
    with torch.no_grad():
        attentions = [a.numpy() for a in reference(pixel_values=pixels, output_attentions=True).attentions]
    assert attentions[0].shape[-1] == grid[0] * grid[1] + prefix
    expected = independent_rollout(attentions, prefix, fusion, discard).reshape(grid)
    np.testing.assert_allclose(mine, expected, atol=1e-5)

    # end to end: the photo-sized heatmap peaks in the patch the rollout ranks first
    result = explainer.explain(Image.new("RGB", (side, side)), method="rollout")
    row, col = np.unravel_index(np.argmax(expected), grid)
    cell = side // grid[0]
    peak_r, peak_c = np.unravel_index(np.argmax(result.heatmap), result.heatmap.shape)
    assert abs(peak_r // cell - row) <= 1 and abs(peak_c // cell - col) <= 1
    assert not result.class_specific
    assert model.config._attn_implementation != "eager"  # only the explainer's copy is eager


def test_vit_gradcam_reshapes_patch_tokens_of_the_config_grid():
    model = tiny_vit("deit")
    transform = vit.reshape_transform(vit.patch_grid(model.config))
    tokens = torch.arange(2 * 11 * 4, dtype=torch.float32).reshape(2, 11, 4)
    fmap = transform(tokens)
    assert fmap.shape == (2, 4, 3, 3)
    assert torch.equal(fmap[1, :, 0, 0], tokens[1, 2])  # the first patch, after both prefix tokens
    assert torch.equal(fmap[0, :, 2, 1], tokens[0, 2 + 7])


# --- through the service: the served models ------------------------------------------------------
def test_explain_defaults_to_top1_and_matches_classification(service, photo):
    classification = service.classify(photo, "resnet18", 3)
    result = service.explain(photo, "resnet18")
    assert result.method == "gradcam" and result.class_specific
    top = classification.prediction.top[0]
    assert result.target.index == top.index and result.target.label == top.label
    assert result.target.probability == pytest.approx(top.probability, abs=1e-5)
    with Image.open(photo) as im:
        assert result.heatmap.shape == (im.height, im.width) and result.overlay.size == im.size
    assert result.heatmap.dtype == np.float32 and 0 <= result.heatmap.min() <= result.heatmap.max() <= 1
    assert result.ms > 0 and result.total_ms >= result.ms
    assert result.title().startswith(f"ResNet-18 · {top.label} · Grad-CAM · ")
    meta = result.metadata()
    assert meta["class"]["index"] == top.index and meta["method"] == "gradcam"


@pytest.mark.parametrize("key,method", [("resnet18", "gradcam++"), ("resnet18", "eigencam"),
                                        ("squeezenet1_1", "gradcam"),
                                        ("google/vit-base-patch16-224", "rollout"),
                                        ("facebook/deit-tiny-patch16-224", "gradcam")])
def test_every_family_and_method_gives_a_heatmap(service, photo, key, method):
    result = service.explain(photo, key, target=7, method=method)
    assert result.method == method and result.target.index == 7
    assert result.heatmap.max() > 0


def test_explaining_leaves_the_served_models_untouched(service, photo):
    """No hooks on the classification model, SDPA kept, and the same predictions afterwards."""
    key = "google/vit-base-patch16-224"
    classifier, _ = service.model(key)
    before = classifier.classify(Image.open(photo).convert("RGB"), 5).probabilities
    service.explain(photo, key, method="gradcam")
    service.explain(photo, key, method="rollout")
    hooks = sum(len(m._forward_hooks) + len(m._backward_hooks) for m in classifier.model.modules())
    assert hooks == 0
    assert classifier.model.config._attn_implementation == "sdpa"
    assert all(not p.requires_grad or p.grad is None for p in classifier.model.parameters())
    after = classifier.classify(Image.open(photo).convert("RGB"), 5).probabilities
    np.testing.assert_array_equal(before, after)


def test_bad_requests_get_clear_messages(service, photo):
    with pytest.raises(UnknownClassError, match="outside ResNet-18's 1000 classes"):
        service.explain(photo, "resnet18", target=1000)
    with pytest.raises(UnknownClassError, match="no class named 'not a class'"):
        service.explain(photo, "resnet18", target="not a class")
    # the Hub configs name two classes "crane": the label must say which
    with pytest.raises(UnknownClassError, match=r"Did you mean: crane \(134\), crane \(517\)"):
        service.explain(photo, "google/vit-base-patch16-224", target="crane")
    assert service.explain(photo, "google/vit-base-patch16-224", target="crane (517)").target.index == 517
    assert service.explain(photo, "resnet18", target="TABBY").target.label == "tabby"
    with pytest.raises(UnsupportedMethodError, match="does not apply to ResNet-18"):
        service.explain(photo, "resnet18", method="rollout")
    with pytest.raises(UnsupportedMethodError, match="Unknown heatmap method 'lime'"):
        service.explain(photo, "resnet18", method="lime")
    with pytest.raises(ExplainError, match="opacity"):
        service.explain(photo, "resnet18", opacity=1.5)


def test_an_evicted_model_takes_its_explainer_along(model_caches, photo):
    import gc

    service = ClassificationService(resolve_settings(device="cpu"))
    service.explain(photo, "squeezenet1_1")
    assert len(service._explainers) == 1
    service.cache.clear()  # what eviction does
    gc.collect()
    assert len(service._explainers) == 0


# --- concurrency ------------------------------------------------------------------------------------
def test_eight_parallel_explanations_equal_sequential_ones_while_classifying(model_caches):
    service = ClassificationService(resolve_settings(device="cpu", result_cache_size=0))
    key = "squeezenet1_1"
    explained = [png(noise_photo(240, 200, seed=s)) for s in range(8)]
    classified = [png(noise_photo(200, 240, seed=100 + s)) for s in range(8)]
    sequential = [service.explain(data, key).heatmap for data in explained]
    expected_probs = [service.classify(data, key).prediction.probabilities for data in classified]
    assert all(h.max() > 0 for h in sequential)
    assert not np.allclose(sequential[0], sequential[1])  # different images, different maps

    start = threading.Barrier(16)

    def explain(data: bytes) -> np.ndarray:
        start.wait()
        return service.explain(data, key).heatmap

    def classify(data: bytes) -> np.ndarray:
        start.wait()
        return service.classify(data, key).prediction.probabilities

    with ThreadPoolExecutor(16) as pool:
        heat = [pool.submit(explain, d) for d in explained]
        probs = [pool.submit(classify, d) for d in classified]
        heat, probs = [f.result() for f in heat], [f.result() for f in probs]
    for got, want in zip(heat, sequential):
        np.testing.assert_allclose(got, want, atol=1e-5)
    for got, want in zip(probs, expected_probs):
        np.testing.assert_allclose(got, want, atol=1e-5)
    classifier, _ = service.model(key)
    assert sum(len(m._forward_hooks) for m in classifier.model.modules()) == 0


def test_rollout_settings_come_from_the_environment_and_are_checked():
    s = resolve_settings(env={"DASHBOARD_EXPLAIN_HEAD_FUSION": "max", "DASHBOARD_EXPLAIN_DISCARD_RATIO": "0.5"})
    assert (s.explain_head_fusion, s.explain_discard_ratio) == ("max", 0.5)
    for env in ({"DASHBOARD_EXPLAIN_HEAD_FUSION": "median"}, {"DASHBOARD_EXPLAIN_DISCARD_RATIO": "1"}):
        with pytest.raises(ValueError, match="explain_"):
            resolve_settings(env=env)
