"""Load and soak through the real server. The default run uses short versions; the full sizes
(50 clients x 5 requests, 1,000 sequential requests) are marked ``soak`` (``pytest -m soak``) and
are what ``python benchmarks/load_soak.py`` runs and prints."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from gradio import route_utils

from benchmarks.load_soak import SOAK_CLEANUP, noise_images, reference_answers, run_load, run_soak
from conftest import serve_app


@pytest.fixture(scope="module")
def gradio_temp(model_caches, tmp_path_factory):
    """A temporary folder for this module's servers only, so that the files counted are theirs.
    gradio reads GRADIO_TEMP_DIR when an app is built and again at each request."""
    folder = tmp_path_factory.mktemp("gradio-temp")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GRADIO_TEMP_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def load_app(gradio_temp):
    """Result cache off: every request is a real inference, however often an image comes back."""
    with serve_app(result_cache_size=0) as app:
        yield app


@pytest.fixture(scope="module")
def soak_app(gradio_temp):
    """As load_app, with delete_cache in seconds instead of an hour."""
    with serve_app(delete_cache=SOAK_CLEANUP, result_cache_size=0) as app:
        yield app


def check_load(app, folder, clients: int, requests: int, capsys) -> None:
    images = noise_images(folder, clients, seed=clients)  # one distinct image per client
    reference = reference_answers(app.url, images)  # each image on each endpoint, one at a time
    report = run_load(app.url, images, requests)
    with capsys.disabled():
        print(f"\n{report.table()}")
    assert report.problems(reference) == []


def check_soak(app, folder, temp_dir, requests: int, capsys) -> None:
    report = run_soak(app.url, noise_images(folder, requests, seed=requests, size=32), temp_dir, SOAK_CLEANUP)
    with capsys.disabled():
        print(f"\n{report.table()}")
    assert report.problems() == []  # memory and threads plateau; delete_cache removes every file


def test_concurrent_clients_get_their_own_sequential_answers(load_app, tmp_path, capsys):
    check_load(load_app, tmp_path, clients=10, requests=3, capsys=capsys)


def test_sequential_requests_plateau(soak_app, gradio_temp, tmp_path, capsys):
    check_soak(soak_app, tmp_path, gradio_temp, requests=100, capsys=capsys)


@pytest.mark.soak
def test_full_load_50_clients_x_5_requests(load_app, tmp_path, capsys):
    check_load(load_app, tmp_path, clients=50, requests=5, capsys=capsys)


@pytest.mark.soak
def test_full_soak_1000_sequential_requests(soak_app, gradio_temp, tmp_path, capsys):
    check_soak(soak_app, tmp_path, gradio_temp, requests=1000, capsys=capsys)


def test_the_cache_sweep_survives_uploads_arriving_during_it(load_app, tmp_path, monkeypatch):
    """gradio 6.31's sweep iterates over the live set of uploads, so an upload that lands during a
    sweep ends the scheduled cleanup for good; the app installs a sweep that iterates over copies."""
    files = []
    for i in range(3):
        files.append(tmp_path / f"upload-{i}.png")
        files[-1].write_bytes(b"x")
    uploads = {str(f) for f in files}
    late = tmp_path / "arrives-during-the-sweep.png"
    late.write_bytes(b"x")
    real_remove = os.remove

    def remove_while_an_upload_lands(path):
        uploads.add(str(late))  # what the upload route does from the event loop
        real_remove(path)

    monkeypatch.setattr(os, "remove", remove_while_an_upload_lands)
    blocks = SimpleNamespace(blocks={}, temp_file_sets=[uploads])
    route_utils.delete_files_created_by_app(blocks, age=None)  # the sweep gradio's scheduler calls
    assert not any(f.exists() for f in files) and uploads <= {str(late)}
