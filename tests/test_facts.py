"""Model facts (issue 9, item 15) and expected classes of the examples (item 16): core units."""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from dashboard.expected import EXAMPLES, expected_for_digest, verdict
from dashboard.models.facts import (
    FACTS_COLUMNS,
    UNKNOWN,
    accuracy_latency,
    facts_line,
    facts_table,
    is_known,
    model_facts,
)
from dashboard.models.registry import list_keys, list_models

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"


# --- facts -----------------------------------------------------------------------------------
@pytest.mark.parametrize("key", list_keys("torchvision"))
def test_torchvision_facts_are_those_of_weights_meta(key):
    import torchvision.models as tvm

    weights = tvm.get_model_weights(key).DEFAULT
    meta = weights.meta
    f = model_facts(key)
    assert f.params == meta["num_params"] and f.gflops == meta["_ops"] and f.file_mb == meta["_file_size"]
    assert f.top1 == meta["_metrics"]["ImageNet-1K"]["acc@1"]
    assert f.top5 == meta["_metrics"]["ImageNet-1K"]["acc@5"]
    assert weights.name in f.source and "weights.meta" in f.source


def test_resnet18_figures_as_torchvision_publishes_them():
    f = model_facts("resnet18")
    assert (f.params, f.gflops, f.file_mb, f.top1, f.top5) == (11689512, 1.814, 44.661, 69.758, 89.078)


def test_transformers_presets_quote_sources_and_mark_unknowns():
    for spec in list_models("transformers"):
        f = model_facts(spec.key)
        assert f.params is not None and "arxiv.org" in f.source  # a paper is cited for each
    deit_b = model_facts("facebook/deit-base-patch16-224")
    assert (deit_b.top1, deit_b.top5, deit_b.params) == (81.8, 95.6, 86_000_000)
    assert "facebook/deit-base-patch16-224 model card" in deit_b.source
    vit = model_facts("google/vit-base-patch16-224")
    assert vit.top1 is None and vit.top5 is None and "384x384" in vit.source  # no figure for this checkpoint
    assert model_facts("facebook/deit-tiny-patch16-224").gflops is None
    # ViT-B/16 and DeiT-B share torchvision vit_b_16's architecture: its FLOPs, from its weights.meta
    import torchvision.models as tvm

    assert vit.gflops == deit_b.gflops == tvm.ViT_B_16_Weights.DEFAULT.meta["_ops"]


def test_hub_weight_file_size_comes_from_the_local_cache(model_caches):
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache("google/vit-base-patch16-224", "model.safetensors")
    f = model_facts("google/vit-base-patch16-224")
    assert f.file_mb == pytest.approx(Path(path).stat().st_size / 2**20)
    assert "this server's Hub cache" in f.source


def test_facts_table_and_line_show_unknown_as_unknown():
    table = facts_table(["resnet18", "google/vit-base-patch16-224", "acme/custom"])
    assert list(table.columns) == list(FACTS_COLUMNS)
    assert list(table["model"]) == ["ResNet-18", "ViT-B/16", "acme/custom"]
    assert table.loc[0, "top-1 %"] == "69.8" and table.loc[1, "top-1 %"] == UNKNOWN
    assert (table.loc[2, ["parameters", "GFLOPs", "top-1 %"]] == UNKNOWN).all()
    assert not is_known("acme/custom") and facts_line("acme/custom").endswith("unknown (not a built-in model).")
    line = facts_line("squeezenet1_1")
    assert "1.2M parameters" in line and "0.35 GFLOPs" in line and "top-1 58.2 %" in line
    assert "not measured here" in line


def test_accuracy_latency_keeps_models_with_both_figures():
    data = accuracy_latency({"resnet18": 41.26, "google/vit-base-patch16-224": 250.0,
                             "facebook/deit-tiny-patch16-224": 30.0, "acme/custom": 5.0})
    assert list(data["model"]) == ["ResNet-18", "DeiT-Ti"]
    assert list(data["latency ms"]) == [41.3, 30.0] and list(data["top-1 %"]) == [69.758, 72.2]


# --- expected classes ------------------------------------------------------------------------
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_expected_class_matches_a_shipped_example():
    from gradio.media import get_image

    files = {p.name: p for p in EXAMPLES_DIR.glob("*.jpg")}
    files.update({n: Path(get_image(n)) for n in ("lion.jpg", "cheetah.jpg")})
    for digest, expected in EXAMPLES.items():
        assert _sha(files[expected.example]) == digest, expected.example
    assert {e.example for e in EXAMPLES.values()} == set(files) - {"astronaut.jpg", "rocket.jpg"}


def test_imagenet_names_of_the_expected_indices():
    import torchvision.models as tvm

    categories = tvm.ResNet18_Weights.DEFAULT.meta["categories"]
    names = {e.example: {categories[i] for i in e.indices} for e in EXAMPLES.values()}
    assert names == {"lion.jpg": {"lion"}, "cheetah.jpg": {"cheetah"}, "cat.jpg": {"tabby", "tiger cat"},
                     "coffee.jpg": {"espresso"}, "grace_hopper.jpg": {"military uniform"}}


def test_match_is_by_content_not_name(tmp_path):
    from PIL import Image

    cat = EXAMPLES_DIR / "cat.jpg"
    assert expected_for_digest(_sha(cat)).name.startswith("tabby")
    renamed = tmp_path / "upload-123.jpeg"
    renamed.write_bytes(cat.read_bytes())
    assert expected_for_digest(_sha(renamed)) is expected_for_digest(_sha(cat))
    # the same photo re-encoded is a different image: no claim about it
    buf = io.BytesIO()
    Image.open(cat).save(buf, "JPEG", quality=90)
    assert expected_for_digest(hashlib.sha256(buf.getvalue()).hexdigest()) is None
    assert expected_for_digest(_sha(EXAMPLES_DIR / "rocket.jpg")) is None


def test_verdict_right_wrong_and_not_imagenet():
    cat = expected_for_digest(_sha(EXAMPLES_DIR / "cat.jpg"))
    assert verdict(cat, 282, "tiger cat", 1000).right is True
    wrong = verdict(cat, 285, "Egyptian cat", 1000)
    assert wrong.right is False and wrong.mark == "✗" and "top-1 is Egyptian cat" in wrong.text
    assert verdict(cat, 281, "tabby", 10).right is None  # another label space: no verdict
    assert verdict(None, 281, "tabby", 1000) is None


def test_service_attaches_the_expected_class(service, tmp_path):
    """Through the core: same bytes under another name get the verdict; a repeat keeps it."""
    renamed = tmp_path / "renamed.jpg"
    renamed.write_bytes((EXAMPLES_DIR / "coffee.jpg").read_bytes())
    first = service.classify(str(renamed), "squeezenet1_1", 3)
    assert first.expected.name == "espresso" and first.verdict.right is (first.prediction.top[0].index == 967)
    again = service.classify(str(renamed), "squeezenet1_1", 3)
    assert again.repeated and again.expected == first.expected
    other = service.classify(str(EXAMPLES_DIR / "rocket.jpg"), "squeezenet1_1", 3)
    assert other.expected is None and other.verdict is None
    assert math.isfinite(service.measured.medians()["squeezenet1_1"])


def test_cards_show_verdict_and_facts(service):
    from dashboard.cards import answer_title, card_details

    result = service.classify(str(EXAMPLES_DIR / "cat.jpg"), "squeezenet1_1", 3)
    top = result.prediction.top[0]
    mark = "✓" if top.index in (281, 282) else "✗"
    assert answer_title(result) == f"SqueezeNet 1.1 · {mark} expected tabby cat (tabby or tiger cat)"
    details = card_details(result)
    assert f"top-1 is {top.label}" in details and "58.2 %" in details
    fake = SimpleNamespace(verdict=None, info=SimpleNamespace(display_name="X", key="acme/x"))
    assert answer_title(fake) == "X" and "not a built-in model" in card_details(fake)
