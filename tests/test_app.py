"""The dashboard served in-process and driven through gradio_client, like an API user would."""

from __future__ import annotations

import pandas as pd
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from dashboard.compare import AGREEMENT_COLUMNS, LATENCY_COLUMNS


def _rows(table: dict) -> pd.DataFrame:
    return pd.DataFrame(table["data"], columns=table["headers"])


def test_endpoints_have_stable_api_names(client):
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(named) == {"/classify_resnet", "/classify_vit", "/compare", "/model_facts", "/perturb", "/robustness",
                          "/sweep", "/explain", "/compare_explain", "/evaluate", "/cancel_evaluation", "/check_image",
                          "/fair_timing"}


def test_classify_resnet_returns_label_times_and_card(client, photo):
    label, times, card = client.predict(handle_file(str(photo)), "resnet18", 5, api_name="/classify_resnet")
    assert len(label["confidences"]) == 5
    assert label["label"] == label["confidences"][0]["label"]
    table = _rows(times)
    assert list(table.columns) == list(LATENCY_COLUMNS) and table.loc[0, "model"] == "ResNet-18"
    assert table.loc[0, "forward ms"] > 0 and table.loc[0, "device"] == "cpu"
    assert "11.7M parameters" in card and "224×224" in card and "ResNet18_Weights" in card


def test_second_use_says_cached(client, photo):
    client.predict(handle_file(str(photo)), "squeezenet1_1", 3, api_name="/classify_resnet")
    # a different image: a real second inference on the now-loaded model
    from gradio.media import get_image

    _, times, card = client.predict(handle_file(get_image("lion.jpg")), "squeezenet1_1", 3,
                                    api_name="/classify_resnet")
    assert _rows(times).loc[0, "load"] == "cached" and "model cached" in card


def test_classify_vit_preset_and_custom_id(client, photo):
    label, times, card = client.predict(handle_file(str(photo)), "google/vit-base-patch16-224", "", 3,
                                        api_name="/classify_vit")
    assert len(label["confidences"]) == 3 and _rows(times).loc[0, "model"] == "ViT-B/16"
    # a free-form id (here a preset typed by hand) wins over the dropdown
    label, times, _ = client.predict(handle_file(str(photo)), "google/vit-base-patch16-224",
                                     " facebook/deit-tiny-patch16-224 ", 2, api_name="/classify_vit")
    assert len(label["confidences"]) == 2 and _rows(times).loc[0, "model"] == "DeiT-Ti"


def test_compare_returns_labels_tables_chart_and_csv(client, photo):
    keys = ["resnet18", "google/vit-base-patch16-224", "facebook/deit-tiny-patch16-224"]
    out = client.predict(handle_file(str(photo)), keys, 3, api_name="/compare")
    labels, (latency, agreement, chart, csv_path) = out[:4], out[4:]
    visible = [u for u in labels if u.get("visible")]
    # cat.jpg is an example with a known class: each title also carries the right/wrong mark
    assert [u["label"].split(" · ")[0] for u in visible] == ["ResNet-18", "ViT-B/16", "DeiT-Ti"]
    assert all(len(u["value"]["confidences"]) == 3 for u in visible)
    assert labels[3]["visible"] is False
    lat = _rows(latency)
    assert list(lat.columns) == list(LATENCY_COLUMNS) and list(lat["model"]) == ["ResNet-18", "ViT-B/16", "DeiT-Ti"]
    agr = _rows(agreement)
    assert list(agr.columns) == list(AGREEMENT_COLUMNS) and len(agr) == 3  # every pair
    assert agr["JS divergence"].notna().all()  # all three share the ImageNet-1k label space
    assert ((agr["top-k overlap"] >= 0) & (agr["top-k overlap"] <= 1)).all()
    # chart and file come as updates: the chart keeps the ticked order, the button is enabled
    assert sorted(set(r[1] for r in chart["value"]["data"])) == ["forward", "postprocess", "preprocess"]
    # (a model another test of the session already asked about is "NAME (cached)")
    assert [m.removesuffix(" (cached)") for m in chart["sort"]] == ["ResNet-18", "ViT-B/16", "DeiT-Ti"]
    assert csv_path["interactive"] is True
    csv = pd.read_csv(csv_path["value"])
    assert list(csv["model"]) == list(lat["model"])
    pd.testing.assert_frame_equal(csv[list(LATENCY_COLUMNS)].astype(str), lat.astype(str))
    assert list(csv["top-1"]) == [u["value"]["label"] for u in visible]


@pytest.mark.parametrize("keys", [["resnet18"], ["resnet18", "resnet34", "squeezenet1_0", "squeezenet1_1", "resnet50"]])
def test_compare_needs_two_to_four_models(client, photo, keys):
    with pytest.raises(AppError, match="between 2 and 4"):
        client.predict(handle_file(str(photo)), keys, 3, api_name="/compare")


@pytest.mark.parametrize("api_name, args", [
    ("/classify_resnet", ("resnet18", 3)),
    ("/classify_vit", ("google/vit-base-patch16-224", "", 3)),
    ("/compare", (["resnet18", "google/vit-base-patch16-224"], 3)),
])
def test_empty_submit_asks_for_an_image(client, api_name, args):
    with pytest.raises(AppError, match="Upload an image first"):
        client.predict(None, *args, api_name=api_name)


def test_core_errors_arrive_as_readable_messages(client, photo, tmp_path):
    noise = tmp_path / "photo.jpg"
    noise.write_bytes(b"\x00not an image" * 50)
    with pytest.raises(AppError, match="not a readable JPEG"):
        client.predict(handle_file(str(noise)), "resnet18", 3, api_name="/classify_resnet")
    with pytest.raises(AppError, match="resnet19 is not in the list of choices"):
        client.predict(handle_file(str(photo)), "resnet19", 3, api_name="/classify_resnet")
    with pytest.raises(AppError, match="not an image classifier|not in the Hugging Face cache"):
        client.predict(handle_file(str(photo)), "google/vit-base-patch16-224", "acme/nothing-here", 3,
                       api_name="/classify_vit")
    # and the server is still fine afterwards
    label, _, _ = client.predict(handle_file(str(photo)), "resnet18", 1, api_name="/classify_resnet")
    assert len(label["confidences"]) == 1


def test_page_is_served_with_examples(app_url):
    import httpx

    page = httpx.get(app_url, timeout=30)
    assert page.status_code == 200 and "Image classifier dashboard" in page.text
    config = httpx.get(app_url + "config", timeout=30).json()
    examples = [c for c in config["components"] if c.get("type") == "dataset"]
    assert examples and len(examples[0]["props"]["samples"]) == 2 + 5  # lion, cheetah + 5 photos


def test_building_the_app_loads_no_model(model_caches):
    from dashboard.app import build_demo
    from dashboard.settings import resolve_settings

    demo = build_demo(resolve_settings(device="cpu"))
    assert demo.service.cache.loaded_keys() == []
