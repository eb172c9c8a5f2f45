"""The Robustness endpoints (/perturb, /robustness, /sweep) through gradio_client, like an API user."""

from __future__ import annotations

import base64

import pandas as pd
import pytest
from gradio_client import handle_file
from PIL import Image

from dashboard.robustness import CHANGE_COLUMNS
from tests import imagegen as gen
from tests.conftest import app_error

ENDPOINTS = ("/perturb", "/robustness", "/sweep")


def _rows(table: dict) -> pd.DataFrame:
    return pd.DataFrame(table["data"], columns=table["headers"])


def test_every_parameter_but_the_image_has_a_default(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    for name in ENDPOINTS:
        params = api[name]["parameters"]
        assert params[0]["parameter_name"] == "image_path" and not params[0]["parameter_has_default"]
        assert all(p["parameter_has_default"] for p in params[1:]), name


def test_perturb_preview_with_defaults(client, photo):
    path, caption = client.predict(handle_file(str(photo)), api_name="/perturb")
    with Image.open(path) as shown, Image.open(photo) as original:
        assert shown.size == original.size
    assert "Gaussian blur, strength 0.3 (sigma 2.4 px)" in caption and "seed 0" in caption


def test_robustness_flags_labels_and_hides_unused_slots(client, photo):
    out = client.predict(handle_file(str(photo)), ["resnet18"], "rotation", 1.0, 0, 0.5, 0.5, 2,
                         api_name="/robustness")
    preview, caption, labels, summary = out[0], out[1], out[2:6], out[6]
    assert labels[0]["visible"] and len(labels[0]["value"]["confidences"]) == 2
    assert labels[0]["label"].startswith("ResNet-18 · ")
    assert ("top-1 changed" in labels[0]["label"]) == ("the answer changed" in summary)
    assert all(not u["visible"] for u in labels[1:])
    assert "Rotation, strength 1 (angle 180°)" in caption and summary.startswith("At strength 1: ")


def test_sweep_with_defaults_returns_curves_table_and_gallery(client, photo):
    curve, changes, gallery = client.predict(handle_file(str(photo)), api_name="/sweep")
    data = pd.DataFrame(curve["value"]["data"], columns=[c for c in curve["value"]["columns"]])
    assert sorted(set(data["model"])) == ["ResNet-18", "ViT-B/16"] and len(data) == 2 * 8
    assert data.groupby("model")["probability"].first().between(0, 1).all()
    assert list(curve["color_map"]) == ["ResNet-18", "ViT-B/16"]
    table = _rows(changes)
    assert list(table.columns) == list(CHANGE_COLUMNS) and list(table["model"]) == ["ResNet-18", "ViT-B/16"]
    assert (table["batch size"] >= 8).all()
    assert len(gallery) == 8 and gallery[0]["caption"].startswith("strength 0.00 · sigma 0 px")


@pytest.mark.parametrize("api_name, args, message", [
    ("/perturb", ("snow", 0.5, 0, 0.5, 0.5), "not in the list of choices|Unknown perturbation"),
    ("/perturb", ("gaussian_blur", 1.5, 0, 0.5, 0.5), "1.5|between 0 and 1"),
    ("/robustness", ([], "gaussian_blur", 0.5, 0, 0.5, 0.5, 3), "between 1 and 4 models"),
    ("/robustness", (["resnet18"] * 1 + ["resnet34", "resnet50", "squeezenet1_0", "squeezenet1_1"],
                     "gaussian_blur", 0.5, 0, 0.5, 0.5, 3), "between 1 and 4 models"),
    ("/sweep", (["resnet18"], "occlusion", 8, 0, 0.5, 1.5), "1.5|centred inside the image"),
    ("/sweep", (["resnet18"], "gaussian_blur", 1000, 0, 0.5, 0.5), "1000|from 2 to"),
    ("/sweep", (["resnet18"], "gaussian_blur", 8, -3, 0.5, 0.5), "-3|seed"),
])
def test_bad_parameters_get_a_clear_message(client, photo, api_name, args, message):
    with app_error(message):
        client.predict(handle_file(str(photo)), *args, api_name=api_name)


@pytest.mark.parametrize("api_name", ENDPOINTS)
def test_empty_submit_asks_for_an_image(client, api_name):
    with app_error("Upload an image first"):
        client.predict(None, api_name=api_name)


@pytest.mark.parametrize("case", [c for c in gen.hostile_cases()
                                  if c[0] in ("random-bytes-jpg", "truncated-jpeg", "png-bomb-30000", "svg")],
                         ids=lambda c: c[0])
def test_hostile_uploads_get_the_same_clear_message_through_a_sweep(client, upload, photo, case):
    _, name, data, kind = case
    message = {"UnsupportedImageFormatError": "is not accepted|not a readable JPEG",
               "CorruptImageError": "damaged or incomplete", "ImageTooLargeError": "too large"}[kind]
    with app_error(message):
        client.predict(upload(name, data), ["squeezenet1_1"], "gaussian_noise", 3, 0, 0.5, 0.5, api_name="/sweep")
    with app_error(message):
        client.predict(upload(name, data), "gaussian_noise", 0.5, 0, 0.5, 0.5, api_name="/perturb")
    preview, _ = client.predict(handle_file(str(photo)), "pixelate", 0.5, 0, 0.5, 0.5, api_name="/perturb")
    assert preview  # and the server carries on


def test_plain_http_with_a_data_url(app_url, photo):
    """curl's way: a base64 data: URL in the JSON body, no upload; bad values refused by the server."""
    from benchmarks.server import RawClient

    raw = RawClient(app_url)
    image = {"url": "data:image/jpeg;base64," + base64.b64encode(photo.read_bytes()).decode(),
             "meta": {"_type": "gradio.FileData"}}
    try:
        curve, changes, gallery = raw.call("sweep", [image, ["squeezenet1_1"], "pixelate", 3, 0, 0.5, 0.5, "pytorch"])
        assert len(curve["value"]["data"]) == 3 and len(gallery) == 3
        for api, bad, message in (
                ("sweep", [image, ["squeezenet1_1"], "pixelate", 1000, 0, 0.5, 0.5, "pytorch"], "greater than maximum"),
                ("sweep", [image, ["squeezenet1_1"], "fog", 3, 0, 0.5, 0.5, "pytorch"], "not in the list of choices"),
                ("perturb", [image, "pixelate", 7.5, 0, 0.5, 0.5], "greater than maximum"),
                ("perturb", [image, "occlusion", 0.5, 0, -1, 0.5], "less than minimum")):
            with pytest.raises(RuntimeError, match=message) as info:
                raw.call(api, bad)
            assert "Traceback" not in str(info.value)
    finally:
        raw.close()


def test_api_parameter_names_say_what_they_are(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    names = {name: [p["parameter_name"] for p in api[name]["parameters"]] for name in ENDPOINTS}
    assert names == {
        "/perturb": ["image_path", "perturbation", "strength", "seed", "patch_x", "patch_y"],
        "/robustness": ["image_path", "models", "perturbation", "strength", "seed", "patch_x", "patch_y", "top_k",
                        "runtime"],
        "/sweep": ["image_path", "models", "perturbation", "steps", "seed", "patch_x", "patch_y", "runtime"],
    }
