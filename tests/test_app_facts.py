"""Through gradio_client (issue 9, items 15, 16, 19): API defaults, model facts and the
right/wrong marks of the examples, as an API user sees them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from gradio_client import handle_file

from dashboard.models.facts import FACTS_COLUMNS

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"


def _rows(table: dict) -> pd.DataFrame:
    return pd.DataFrame(table["data"], columns=table["headers"])


def _renamed(tmp_path: Path, example: str) -> str:
    """The example's bytes under another name, as a user re-uploading it would send them."""
    path = tmp_path / f"my-upload-{example}"
    path.write_bytes((EXAMPLES_DIR / example).read_bytes())
    return str(path)


def test_every_parameter_but_the_image_has_a_default(client, photo):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    for name, endpoint in api.items():
        params = {p["parameter_name"]: p["parameter_has_default"] for p in endpoint["parameters"]}
        required = {"/model_facts": [], "/cancel_evaluation": [], "/evaluate": ["archive_path"]}.get(name, ["image_path"])
        assert [n for n, has in params.items() if not has] == required, name
    # /classify_vit with the image alone: the preset, no custom id, top-3
    label, times, card = client.predict(handle_file(str(photo)), api_name="/classify_vit")
    assert len(label["confidences"]) == 3 and _rows(times).loc[0, "model"] == "ViT-B/16"
    label, _, _ = client.predict(handle_file(str(photo)), api_name="/classify_resnet")
    assert len(label["confidences"]) == 3


def test_model_card_shows_verdict_and_reference_figures(client, tmp_path):
    label, _, card = client.predict(handle_file(_renamed(tmp_path, "grace_hopper.jpg")), "resnet18", 3,
                                    api_name="/classify_resnet")
    top1 = label["label"]
    right = top1 == "military uniform"
    assert f"{'✓ right' if right else '✗ wrong'}: expected military uniform, top-1 is {top1}" in card
    assert "Reference figures (quoted, not measured here): 11.7M parameters · 1.81 GFLOPs" in card
    assert "top-1 69.8 %, top-5 89.1 %" in card and "ResNet18_Weights.IMAGENET1K_V1 weights.meta" in card
    # a photo without an ImageNet class: no verdict, still the figures
    _, _, card = client.predict(handle_file(str(EXAMPLES_DIR / "rocket.jpg")), "resnet18", 3,
                                api_name="/classify_resnet")
    assert "known answer" not in card and "Reference figures" in card
    _, _, card = client.predict(handle_file(str(EXAMPLES_DIR / "cat.jpg")), "google/vit-base-patch16-224", "", 3,
                                api_name="/classify_vit")
    assert "top-1 unknown, top-5 unknown" in card and "expected tabby cat" in card


def test_compare_labels_carry_the_mark(client, tmp_path):
    out = client.predict(handle_file(_renamed(tmp_path, "coffee.jpg")), ["resnet18", "squeezenet1_1"], 3,
                         api_name="/compare")
    for update, name in zip(out[:2], ["ResNet-18", "SqueezeNet 1.1"]):
        mark = "✓" if update["value"]["label"] == "espresso" else "✗"
        assert update["label"] == f"{name} · {mark} expected espresso"
    out = client.predict(handle_file(str(EXAMPLES_DIR / "astronaut.jpg")), ["resnet18", "squeezenet1_1"], 3,
                         api_name="/compare")
    assert [u["label"] for u in out[:2]] == ["ResNet-18", "SqueezeNet 1.1"]


def test_model_facts_table_and_accuracy_latency_plot(client, photo):
    keys = ["resnet18", "google/vit-base-patch16-224", "facebook/deit-small-patch16-224"]
    # before DeiT-S ran here: it has a reference accuracy but no latency measured yet
    table, scatter, note = client.predict(keys, api_name="/model_facts")
    facts = _rows(table)
    assert list(facts.columns) == list(FACTS_COLUMNS) and list(facts["model"]) == ["ResNet-18", "ViT-B/16", "DeiT-S"]
    assert list(facts["top-1 %"]) == ["69.8", "unknown", "79.9"]
    assert "ViT-B/16 (reference accuracy unknown)" in note
    client.predict(handle_file(str(photo)), "resnet18", 3, api_name="/classify_resnet")
    client.predict(handle_file(str(photo)), "google/vit-base-patch16-224", "facebook/deit-small-patch16-224", 3,
                   api_name="/classify_vit")
    _, scatter, note = client.predict(keys, api_name="/model_facts")
    points = pd.DataFrame(scatter["value"]["data"], columns=scatter["value"]["columns"])
    assert list(points["model"]) == ["ResNet-18", "DeiT-S"]  # ViT-B/16: accuracy unknown, left out
    # each model keeps the colour of its place among the ticked ones (ViT-B/16 is the second)
    assert scatter["color_map"] == {"ResNet-18": "#1f77b4", "ViT-B/16": "#ff7f0e", "DeiT-S": "#2ca02c"}
    assert list(points["top-1 %"]) == [69.758, 79.9] and (points["latency ms"] > 0).all()
    assert note == "Not plotted: ViT-B/16 (reference accuracy unknown)."


def test_model_facts_refuses_unknown_keys(client):
    from gradio_client.exceptions import AppError

    for keys in (["../../etc/passwd"], ["resnet18", "acme/custom"]):
        try:
            client.predict(keys, api_name="/model_facts")
        except AppError as exc:
            assert "not in the list of choices" in str(exc)  # refused by the server, before any handler
        else:
            raise AssertionError(f"{keys} accepted")
    table, scatter, note = client.predict([], api_name="/model_facts")
    assert table["data"] == [] or table["data"] == [["" for _ in table["headers"]]]
