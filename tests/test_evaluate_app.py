"""The Evaluate tab through the API (gradio_client): a zip in, tables, gallery and CSV out."""

from __future__ import annotations

import pytest

import evalkit
from conftest import app_error

CLASSES = {"red": "tench", "green": "207", "blue": "n01443537", "yellow": "zebras"}  # name, index, wnid, none


@pytest.fixture(scope="module")
def labelled_zip(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-app")
    folder = evalkit.labelled_folder(root / "photos", per_class=3, names=CLASSES)
    (folder / "tench" / "notes.txt").write_text("not an image")
    return evalkit.zip_folder(folder, root / "photos.zip")


def test_evaluate_a_zip_through_the_api(client, labelled_zip):
    from gradio_client import handle_file

    status, summary, per_class, confusions, disagreement, gallery, csv_file = client.predict(
        handle_file(str(labelled_zip)), ["squeezenet1_1"], api_name="/evaluate")
    assert "12 images evaluated" in status and "zebras" in status and "1 × not an image file" in status
    (row,) = summary["data"]
    assert row[0] == "squeezenet1_1" and row[1] == 9  # the 3 zebras match no label: listed, not scored
    assert row[9] == "zebras"
    assert sorted(r[0] for r in per_class["data"]) == ["207", "n01443537", "tench"]
    assert 0 < len(gallery) <= 9  # random weights: misclassified images are shown, whatever they are
    with open(csv_file) as f:
        lines = f.read().splitlines()
    assert lines[0] == "image,true class,model,predicted,top-1 correct,top-5 correct" and len(lines) == 13


def test_over_the_cap_and_not_a_zip_get_clear_messages(launch_app, labelled_zip, upload):
    app = launch_app(eval_max_archive_mb=0.002)
    with app_error("The archive is .* KB; the limit is 2 KB"):
        app.client.predict(upload("photos.zip", labelled_zip.read_bytes()), ["squeezenet1_1"], api_name="/evaluate")
    with app_error("Invalid file type"):  # gradio's own server-side check of file_types
        app.client.predict(upload("labels.csv", b"filename,label\n/etc/passwd,x\n"), ["squeezenet1_1"],
                           api_name="/evaluate")
    with app_error("Upload a .zip file"):  # ours: the content, whatever the name
        app.client.predict(upload("labels.zip", b"filename,label\n/etc/passwd,x\n"), ["squeezenet1_1"],
                           api_name="/evaluate")
    with app_error("Choose between 1 and 4 models"):
        app.client.predict(upload("photos.zip", b"PK"), [], api_name="/evaluate")


def test_cancel_stops_the_run_after_the_batch_in_progress(launch_app, tmp_path):
    import time

    from gradio_client import handle_file

    # 100 images in batches of 2 through resnet18: seconds of work even on a fast machine
    folder = evalkit.labelled_folder(tmp_path / "photos", per_class=25, names=CLASSES)
    archive = evalkit.zip_folder(folder, tmp_path / "photos.zip")
    app = launch_app(eval_batch_size=2)
    job = app.client.submit(handle_file(str(archive)), ["resnet18"], api_name="/evaluate")
    deadline = time.monotonic() + 120
    while not any("Evaluating" in (p.desc or "") for p in (job.status().progress_data or [])):
        assert time.monotonic() < deadline and not job.done(), "the run never reported progress"
        time.sleep(0.05)
    app.client.predict(api_name="/cancel_evaluation")  # the same client: the same session
    status = job.result(timeout=120)[0]
    assert "Cancelled" in status
    evaluated = int(status.split("**")[1].split()[0])
    assert 2 <= evaluated < 100 and evaluated % 2 == 0  # whole batches only, not the whole set
