"""Issue 8 through the running server: gradio_client and plain HTTP, as a remote visitor would.

Model ids that name server paths, data: URLs past the upload cap, impossible settings, Markdown
injection, over-long ids, bad top-k values, and what a comparison or a waiting request reports.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from gradio.utils import get_upload_folder
from gradio_client.exceptions import AppError

from conftest import HF_HOME, TORCH_HOME, app_error
from dashboard import random_weights
from dashboard.models.registry import shown
from tests import imagegen as gen

ROOT = Path(__file__).resolve().parent.parent
VIT_PRESET = "google/vit-base-patch16-224"
MB = 2**20


def vit_error(client, image, custom_id: str) -> str:
    with pytest.raises(AppError) as refused:
        client.predict(image, VIT_PRESET, custom_id, 3, api_name="/classify_vit")
    return str(refused.value)


def planted_checkpoint(tmp_path: Path, name: str) -> Path:
    """A loadable checkpoint folder on the server's disk (as a Hub-cache snapshot or an upload
    could leave one), files copied rather than linked."""
    snapshot = random_weights.write_hub_checkpoint(f"planted/{abs(hash(name)) % 10**6}", HF_HOME, tiny=True)
    folder = tmp_path / name
    shutil.copytree(snapshot, folder, symlinks=False)
    return folder


# --- item 1: the id box does not read the server's disk ------------------------------------
def test_every_path_gets_the_same_refusal_whatever_exists_on_disk(client, upload, tmp_path):
    image = upload("noise.png", gen.noisy("PNG", (32, 32)))
    planted = planted_checkpoint(tmp_path, "planted-vit")
    paths = [str(planted), str(tmp_path), str(tmp_path / "missing"), ".", "./", "/root/.ssh", "/etc",
             "/etc/nonexistent", HF_HOME.as_posix(), "~", "../.."]
    messages = {vit_error(client, image, path).replace(shown(path), "<ID>") for path in paths}
    assert len(messages) == 1, messages
    (message,) = messages
    assert "Unknown model <ID>" in message and "'org/name'" in message
    # nothing of the server's disk leaks: no working directory, no cache folder
    assert os.getcwd() not in message and str(HF_HOME) not in message


def test_a_relative_directory_that_looks_like_a_hub_id_is_looked_up_on_the_hub_only(client, upload):
    # "assets/examples" is a directory in the server's working directory AND valid Hub grammar:
    # transformers would read it as a local folder; the answer must equal a missing Hub repo's.
    assert (ROOT / "assets" / "examples").is_dir()
    image = upload("noise.png", gen.noisy("PNG", (32, 32)))
    here = vit_error(client, image, "assets/examples").replace("assets/examples", "<ID>")
    absent = vit_error(client, image, "absent-org/examples").replace("absent-org/examples", "<ID>")
    assert here == absent and "Hugging Face cache" in here


def test_paths_get_one_message_also_when_custom_ids_are_off(launch_app, upload):
    app = launch_app(allow_custom_models=False)
    image = upload("noise.png", gen.noisy("PNG", (32, 32)))
    paths = ["/root/.ssh", "/etc/nonexistent", ".", str(HF_HOME)]
    messages = {vit_error(app.client, image, p).replace(shown(p), "<ID>") for p in paths}
    assert len(messages) == 1, messages


def test_operator_listed_folders_load_by_name_and_no_path_reaches_the_browser(launch_app, upload, tmp_path):
    folder = planted_checkpoint(tmp_path, "x`<img src=x onerror=alert(1)>`*_[a](b)")  # a hostile name
    app = launch_app(local_model_dirs=(str(folder),))
    image = upload("noise.png", gen.noisy("PNG", (32, 32)))
    label, _, card = app.client.predict(image, VIT_PRESET, f"local:{folder.name}", 3, api_name="/classify_vit")
    assert len(label["confidences"]) == 3
    assert str(tmp_path) not in card and "<img" not in card and "`" not in card.replace("\\`", "")
    assert "&lt;img" in card and "\\[a\\]" in card  # inert, and still readable
    assert "Unknown model" in vit_error(app.client, image, str(folder))  # its path: still refused


# --- item 2 through the server: planted configs are refused fast, in their own slots -------
def test_a_planted_config_is_refused_by_its_fields(client, upload):
    from conftest import hub_config

    hub_config("attacker/server-layers", {"model_type": "vit", "architectures": ["ViTForImageClassification"],
                                          "num_hidden_layers": 20_000, "hidden_size": 8,
                                          "num_attention_heads": 1, "intermediate_size": 8})
    message = vit_error(client, upload("noise.png", gen.noisy("PNG", (32, 32))), "attacker/server-layers")
    assert "num_hidden_layers=20000 (this deployment allows 1-64)" in message


# --- item 4: the upload cap holds for base64 data: URLs -------------------------------------
def _call(app_url: str, api: str, data: list, **kwargs) -> httpx.Response:
    return httpx.post(f"{app_url}gradio_api/call/{api}", json={"data": data}, timeout=60, **kwargs)


def _result(app_url: str, api: str, event: httpx.Response) -> str:
    event_id = event.json()["event_id"]
    return httpx.get(f"{app_url}gradio_api/call/{api}/{event_id}", timeout=120).text


def _data_url(raw: bytes) -> dict:
    return {"url": "data:image/png;base64," + base64.b64encode(raw).decode(), "meta": {"_type": "gradio.FileData"}}


def _cache_files() -> set[str]:
    """Files our RawImage writes for data: URLs (*.upload) or anything of a megabyte or more in
    the upload folder (which other test sessions on this machine may share)."""
    return {str(p) for p in Path(get_upload_folder()).rglob("*")
            if p.is_file() and (p.suffix == ".upload" or p.stat().st_size >= MB)}


def test_a_data_url_under_the_cap_is_classified(app_url):
    # plain HTTP sends every input (gradio_client fills the defaults; gradio's HTTP route does not)
    answer = _call(app_url, "classify_resnet",
                   [_data_url(gen.noisy("PNG", (32, 32))), "squeezenet1_1", 3, "pytorch"])
    assert answer.status_code == 200
    assert "event: complete" in _result(app_url, "classify_resnet", answer)


def test_a_data_url_over_the_cap_is_refused_before_decoding_and_nothing_is_written(app_url, app_settings):
    cap = int(app_settings.max_file_size_mb * MB)
    before = _cache_files()
    # just over the cap once decoded, small enough for the body limit: refused by the component
    over = _data_url(gen.solid("PNG", (8, 8)) + bytes(cap + 1024))
    answer = _call(app_url, "classify_resnet", [over, "squeezenet1_1", 3, "pytorch"])
    text = _result(app_url, "classify_resnet", answer)
    assert "event: error" in text and "larger than this server accepts (5 MB at most)" in text
    # far over the cap: refused from the body's declared length, before it is even read
    huge = _data_url(bytes(4 * cap))
    answer = _call(app_url, "classify_resnet", [huge, "squeezenet1_1", 3, "pytorch"])
    assert answer.status_code == 413 and "larger than this server accepts" in answer.json()["error"]
    assert _cache_files() - before == set()


def test_a_chunked_body_without_length_is_capped_while_it_streams(app_url, app_settings):
    cap = int(app_settings.max_file_size_mb * MB)
    payload = json.dumps({"data": [_data_url(bytes(2 * cap)), "squeezenet1_1", 3, "pytorch"]}).encode()

    def chunks():
        for i in range(0, len(payload), 2**20):
            yield payload[i:i + 2**20]

    answer = httpx.post(f"{app_url}gradio_api/queue/join", content=chunks(), timeout=60,
                        headers={"content-type": "application/json"})
    assert answer.status_code == 413


# --- small items through the server -------------------------------------------------------
def test_a_million_character_id_is_refused_with_a_short_echo(client, upload):
    message = vit_error(client, upload("noise.png", gen.noisy("PNG", (32, 32))), "x" * 1_000_000)
    assert "too long (1,000,000 characters" in message and len(message) < 400


def test_menus_refuse_unknown_values_quoting_a_short_escaped_prefix(client, upload):
    image = upload("noise.png", gen.noisy("PNG", (32, 32)))
    hostile = "<img src=x onerror=alert(1)>" + "y" * 1_000_000
    with pytest.raises(AppError) as refused:
        client.predict(image, hostile, 3, api_name="/classify_resnet")
    assert "is not in the list of choices" in str(refused.value) and len(str(refused.value)) < 600
    assert "<img" not in str(refused.value) and "&lt;img" in str(refused.value)
    with pytest.raises(AppError) as refused:
        client.predict(image, ["resnet18", hostile], 3, api_name="/compare")
    assert len(str(refused.value)) < 800 and "<img" not in str(refused.value)


@pytest.mark.parametrize("top_k, why", [(2.5, "not 2.5"), ("abc", "is not a number"), (None, "is not a number"),
                                        (11, "not 11"), (0, "not 0")])
def test_top_k_must_be_a_whole_number_from_1_to_10(client, upload, top_k, why):
    with app_error(f"Top-k must be a whole number from 1 to 10.*{why}"):
        client.predict(upload("noise.png", gen.noisy("PNG", (32, 32))), "squeezenet1_1", top_k,
                       api_name="/classify_resnet")


def test_compare_with_one_model_chosen_four_times_says_what_was_chosen(client, upload):
    with app_error("you chose only squeezenet1_1, four times"):
        client.predict(upload("noise.png", gen.noisy("PNG", (32, 32))), ["squeezenet1_1"] * 4, 3,
                       api_name="/compare")


def test_the_result_cache_gives_the_same_verdict_as_a_fresh_request(client, upload):
    png = gen.noisy("PNG", (24, 24), seed=42)
    with app_error("named .jpg but contains PNG data"):
        client.predict(upload("b.jpg", png), "squeezenet1_1", 3, api_name="/classify_resnet")
    client.predict(upload("a.png", png), "squeezenet1_1", 3, api_name="/classify_resnet")
    with app_error("named .jpg but contains PNG data"):
        client.predict(upload("b.jpg", png), "squeezenet1_1", 3, api_name="/classify_resnet")


def test_missing_weights_in_the_browser_name_no_server_path(launch_app, upload, tmp_path, monkeypatch):
    import urllib.error

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr("torch.hub.download_url_to_file", no_network)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch"))
    app = launch_app()
    image = upload("noise.png", gen.noisy("PNG", (32, 32)))
    with app_error("python -m dashboard download resnet34") as err:
        app.client.predict(image, "resnet34", 3, api_name="/classify_resnet")
    assert str(tmp_path) not in str(err.value) and "checkpoints" not in str(err.value)
    hub = vit_error(app.client, image, "someone/not-cached-anywhere")
    assert str(HF_HOME) not in hub and "python -m dashboard download someone/not-cached-anywhere" in hub


# --- item 5 and the start-up settings ------------------------------------------------------
def test_cuda_without_cuda_is_logged_at_start_and_told_to_the_visitor(launch_app, upload, monkeypatch, caplog):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    app = launch_app(device="cuda")
    assert "CUDA is not available" in app.demo.service.check_device()
    with app_error("This server is configured for cuda, which is not available"):
        app.client.predict(upload("noise.png", gen.noisy("PNG", (32, 32))), "squeezenet1_1", 3,
                           api_name="/classify_resnet")


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TORCH_HOME": str(TORCH_HOME), "HF_HOME": str(HF_HOME), **env})


@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("entry, env, message", [
    (["-m", "dashboard"], {"DASHBOARD_DEVICE": "tpu"}, r"invalid setting\(s\): device='tpu'"),
    (["-m", "dashboard"], {"DASHBOARD_MAX_FILE_SIZE_MB": "inf"}, r"invalid setting\(s\): max_file_size_mb=inf"),
    (["-m", "dashboard"], {"DASHBOARD_HOST": "999.1.1.1"}, r"invalid setting\(s\): host='999.1.1.1'"),
    (["-m", "dashboard"], {"DASHBOARD_PORT": "{busy}"}, r"port \d+ on 127.0.0.1 is already in use"),
    (["app.py"], {"DASHBOARD_DEVICE": "tpu"}, r"invalid setting\(s\): device='tpu'"),  # the Space entry
])
def test_impossible_settings_stop_start_up_with_one_line(entry, env, message, busy_port):
    env = {k: v.format(busy=busy_port) for k, v in env.items()}
    out = _run(entry, env)
    assert out.returncode == 1, out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.search(message, errors[0]) and "Traceback" not in out.stderr


def test_on_a_space_free_form_ids_are_off_unless_the_operator_turns_them_on():
    from dashboard.settings import resolve_settings

    assert resolve_settings(env={"SPACE_ID": "someone/dashboard"}).allow_custom_models is False
    assert resolve_settings(env={"SPACE_ID": "someone/dashboard",
                                 "DASHBOARD_ALLOW_CUSTOM_MODELS": "true"}).allow_custom_models is True
    assert resolve_settings(env={}).allow_custom_models is True
