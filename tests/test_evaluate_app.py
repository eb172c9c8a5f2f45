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
    assert lines[0] == "image,true class,model,predicted,top-1 correct,top-5 correct,runtime" and len(lines) == 13
    assert all(line.endswith(",pytorch") for line in lines[1:])  # the old call (no runtime) runs on PyTorch


def test_evaluate_on_another_runtime_through_the_api(client, labelled_zip):
    from gradio_client import handle_file

    answers = {}
    for runtime in ("pytorch", "onnxruntime"):
        status, summary, per_class, *_, csv_file = client.predict(
            handle_file(str(labelled_zip)), ["squeezenet1_1"], runtime, api_name="/evaluate")
        assert "12 images evaluated" in status
        (row,) = [dict(zip(summary["headers"], r)) for r in summary["data"]]
        answers[runtime] = row
        with open(csv_file) as f:
            lines = f.read().splitlines()
        assert len(lines) == 13 and all(line.endswith(f",{runtime}") for line in lines[1:])
    torch_row, ort_row = answers["pytorch"], answers["onnxruntime"]
    assert (torch_row["model"], ort_row["model"]) == ("squeezenet1_1", "squeezenet1_1@onnxruntime")
    assert (torch_row["runtime"], ort_row["runtime"]) == ("pytorch", "onnxruntime")
    for column in ("images", "top-1 %", "top-5 %", "unmatched classes"):
        assert ort_row[column] == torch_row[column]  # same weights, same answers (parity gate)
    with app_error("Unknown runtime 'tensorrt'. Valid runtimes: pytorch, onnxruntime, onnxruntime-int8"):
        client.predict(handle_file(str(labelled_zip)), ["squeezenet1_1"], "tensorrt", api_name="/evaluate")


def test_evaluate_over_plain_http_sends_every_input(app_url, labelled_zip):
    """curl's way: upload the zip, then /gradio_api/call/evaluate with the runtime last."""
    from benchmarks.server import RawClient

    raw = RawClient(app_url)
    try:
        uploaded = raw.http.post(f"{raw.base}/upload", files=[("files", ("photos.zip", labelled_zip.read_bytes(),
                                                                        "application/zip"))])
        uploaded.raise_for_status()
        archive = {"path": uploaded.json()[0], "orig_name": "photos.zip", "meta": {"_type": "gradio.FileData"}}
        status, summary, *_ = raw.call("evaluate", [archive, ["squeezenet1_1"], "onnxruntime-int8"])
        assert "12 images evaluated" in status
        row = dict(zip(summary["headers"], summary["data"][0]))
        assert (row["model"], row["runtime"]) == ("squeezenet1_1@onnxruntime-int8", "onnxruntime-int8")
        with pytest.raises(RuntimeError, match="Unknown runtime") as refused:
            raw.call("evaluate", [archive, ["squeezenet1_1"], "<b>x</b>"])
        assert "<b>" not in str(refused.value) and "Traceback" not in str(refused.value)
    finally:
        raw.close()


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
