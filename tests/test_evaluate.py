"""Evaluation on labelled images: known answers, label matching, hostile archives, cancel, memory.

The model is built here (tests/evalkit.py: dominant colour -> class) and enters through the
service's public path as a Classifier, so the real engine runs it; the folder holds three
deliberately mislabelled images, so the exact accuracy, per-class accuracy and confusions are known.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import threading
import time
import zipfile

import pytest

import evalkit
from benchmarks.util import peak_rss_growth_mb
from dashboard.errors import ArchiveRefusedError, DatasetError
from dashboard.evaluate.datasets import ArchiveLimits, open_dataset
from dashboard.evaluate.labels import imagenet_wnids, match_classes
from dashboard.evaluate.metrics import wilson_interval
from dashboard.service import ClassificationService
from dashboard.settings import resolve_settings


@pytest.fixture(scope="module")
def eval_service():
    return ClassificationService(resolve_settings(device="cpu", eval_batch_size=8))


@pytest.fixture(scope="module")
def colour_model():
    return evalkit.colour_classifier()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return evalkit.labelled_folder(tmp_path_factory.mktemp("colours"))


def check_known_answers(report, key="colour-test"):
    (m,) = [m for m in report.models if m.key == key]
    assert report.images == 40 and m.evaluated == 40
    assert m.top1 == 37 and m.top5 == 40  # four classes: the top-5 always holds the truth
    assert m.per_class == {c: (10, n) for c, n in evalkit.EXPECTED_TOP1.items()}
    assert m.confusions == evalkit.EXPECTED_CONFUSIONS
    assert m.unmatched_classes == () and m.unmatched_images == 0


def test_known_model_gives_exact_accuracy_per_class_and_confusions(eval_service, colour_model, folder, tmp_path):
    report = eval_service.evaluate(folder, [colour_model])
    check_known_answers(report)
    m = report.models[0]
    assert m.matched_by == dict.fromkeys(evalkit.COLOURS, "label")
    lo, hi = m.top1_ci
    assert lo < 37 / 40 < hi and (round(lo, 4), round(hi, 4)) == (0.8014, 0.9742)  # Wilson, z = 1.96
    assert m.mean_ms > 0 and m.median_ms > 0 and m.images_per_s > 0
    assert [g.name for g in report.gallery] == ["blue/0000.png", "red/0000.png", "red/0001.png"]
    assert report.gallery[0].predicted == {"colour-test": "yellow"} and max(report.gallery[0].image.size) <= 160
    summary = report.summary_table()
    assert summary.loc[0, "top-1 %"] == 92.5 and summary.loc[0, "top-5 %"] == 100.0
    assert report.per_class_table().set_index("class")["top-1 % colour-test"].to_dict() == {
        "blue": 90.0, "green": 100.0, "red": 80.0, "yellow": 100.0}
    out = tmp_path / "results.csv"
    report.write_csv(out)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 40 and sum(r["top-1 correct"] == "True" for r in rows) == 37
    assert {r["predicted"] for r in rows if r["image"] == "red/0000.png"} == {"green"}
    data = json.loads(report.to_json())
    assert data["models"][0]["top1"] == 37 and data["models"][0]["per_class"]["red"] == {"images": 10, "top1_correct": 8}


def test_two_models_disagreement_lists_the_images(eval_service, colour_model, folder):
    # the second model calls red "green" and green "red": it disagrees on exactly the red and green images
    swapped = evalkit.colour_classifier("swapped", labels=("green", "red", "blue", "yellow"))
    report = eval_service.evaluate(folder, [colour_model, swapped])
    (d,) = report.disagreements
    assert (d.a, d.b, d.compared, d.differ) == ("colour-test", "swapped", 40, 20)
    assert sorted(d.images) == sorted(f"{c}/{i:04d}.png" for c in ("red", "green") for i in range(10))
    assert report.models[1].per_class["blue"] == (10, 9) and report.models[1].top1 == 9 + 10 + 2
    assert set(report.predictions_table()["model"]) == {"colour-test", "swapped"}


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) is None
    lo, hi = wilson_interval(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.2775, abs=1e-4)


def test_matching_by_index_wordnet_id_and_synonym():
    from dashboard.models.classifier import unique_labels
    from dashboard.random_weights import hub_imagenet_labels, imagenet_categories

    tv = unique_labels(imagenet_categories())  # torchvision: 134 "crane bird", 517 "crane"
    hub = unique_labels([f"{name}, Tinca tinca" if i == 0 else name  # the Hub's: "crane" twice
                         for i, name in enumerate(hub_imagenet_labels())])
    wnids = imagenet_wnids()
    assert (len(wnids), wnids[0], wnids[207]) == (1000, "n01440764", "n02099601")
    m = match_classes(["207", "n02099601", "Golden_Retriever", "crane", "N01440764", "zebras", "1000"], tv)
    assert m.index_of == {"207": 207, "n02099601": 207, "Golden_Retriever": 207, "crane": 517, "N01440764": 0}
    assert m.how["207"] == "index" and m.how["n02099601"] == "wordnet id" and m.how["crane"] == "label"
    assert m.unmatched == ("zebras", "1000")
    assert hub[134] == "crane (134)"  # told apart by Classifier; a shared name matches the first
    assert match_classes(["tinca tinca", "TENCH", "crane"], hub).index_of == {"tinca tinca": 0, "TENCH": 0,
                                                                              "crane": 134}
    # a WordNet id means nothing to a model that does not have the 1000 ImageNet classes
    assert match_classes(["n01440764", "azure", "3"], evalkit.LABELS).index_of == {"azure": 2, "3": 3}


def test_unmatched_folder_is_reported_not_dropped(eval_service, colour_model, tmp_path):
    root = evalkit.labelled_folder(tmp_path / "data", per_class=3)
    (root / "purple").mkdir()
    (root / "purple" / "a.png").write_bytes(evalkit.image_bytes(evalkit.colour_image("blue", 1)))
    (root / "notes.txt").write_text("not a class")
    report = eval_service.evaluate(root, [colour_model])
    m = report.models[0]
    assert m.unmatched_classes == ("purple",) and m.unmatched_images == 1
    assert report.images == 13 and m.evaluated == 12
    assert ("notes.txt", "not inside a class folder") in report.skipped
    assert ("purple/a.png", "purple", "colour-test", "blue, azure", None, None, "pytorch") in report.predictions


def test_zip_upload_gives_the_same_answers_as_the_folder(eval_service, colour_model, folder, tmp_path):
    report = eval_service.evaluate(evalkit.zip_folder(folder, tmp_path / "photos.zip"), [colour_model])
    check_known_answers(report)
    assert report.gallery[0].name == "blue/0000.png"


def test_entries_name_absolute_files_whatever_the_path_given(folder, monkeypatch):
    monkeypatch.chdir(folder.parent)
    dataset = open_dataset(folder.name)
    assert len(dataset.entries) == 40 and all(os.path.isabs(e.ref) for e in dataset.entries)
    assert dataset.entries[0].name == "blue/0000.png" and dataset.classes == tuple(sorted(evalkit.COLOURS))


def test_csv_of_filename_label(eval_service, colour_model, folder):
    # file names are relative to the CSV's folder; the header row is optional
    rows = [f"{folder.name}/{c}/{i:04d}.png,{c}" for c in evalkit.COLOURS for i in range(10)]
    path = folder.parent / "labels.csv"
    path.write_text("\n".join(["filename,label", *rows]) + "\n")
    check_known_answers(eval_service.evaluate(path, [colour_model]))


# --- hostile archives -----------------------------------------------------------------------------
def _zip(path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def png():
    return evalkit.image_bytes(evalkit.colour_image("red", 3))


@pytest.mark.parametrize("members, message", [
    ({"red/a.png": "PNG", "red/bomb.png": b"\0" * 5_000_000}, "expands more than 100 times"),
    ({"red/a.png": "PNG", "../red/b.png": "PNG"}, "points outside"),
    ({"red/a.png": "PNG", "red/../../etc/passwd": b"x"}, "points outside"),
    ({"red/a.png": "PNG", "/etc/red/b.png": "PNG"}, "points outside"),
    ({"red/a.png": "PNG", "C:\\red\\b.png": "PNG"}, "points outside"),
])
def test_hostile_archive_is_refused(members, message, tmp_path, png):
    path = _zip(tmp_path / "x.zip", {k: png if v == "PNG" else v for k, v in members.items()})
    with pytest.raises(ArchiveRefusedError, match=message) as info:
        open_dataset(path)
    assert str(tmp_path) not in str(info.value)


def test_archive_caps_on_entries_size_and_file(tmp_path, png):
    many = _zip(tmp_path / "many.zip", {f"red/{i}.png": png for i in range(30)})
    with pytest.raises(ArchiveRefusedError, match="holds 30 entries; the limit is 20"):
        open_dataset(many, ArchiveLimits(max_entries=20))
    with pytest.raises(ArchiveRefusedError, match="expands to"):
        open_dataset(many, ArchiveLimits(max_total_bytes=10 * len(png)))
    with pytest.raises(ArchiveRefusedError, match="the limit is 1 KB"):
        open_dataset(many, ArchiveLimits(max_archive_bytes=1024))
    stored = _zip(tmp_path / "stored.zip", {"red/a.png": png, "red/b.png": png}, zipfile.ZIP_STORED)
    assert len(open_dataset(stored).entries) == 2


def test_links_and_non_images_are_skipped_and_counted(eval_service, colour_model, tmp_path, png):
    path = tmp_path / "mixed.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("set/red/a.png", png)
        zf.writestr("set/red/b.png", png)
        link = zipfile.ZipInfo("set/red/link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr("set/red/readme.txt", "hello")
        zf.writestr("set/red/fake.png", b"this is not a png at all")
        zf.writestr("__MACOSX/set/red/._a.png", b"\0\5\26\7")
    report = eval_service.evaluate(path, [colour_model])
    assert report.images == 2 and report.models[0].top1 == 2
    reasons = dict(report.skipped)
    assert reasons["set/red/link.png"] == "link (ignored)"
    assert reasons["red/readme.txt"] == "not an image file"
    assert "not a readable PNG" in reasons["red/fake.png"]  # refused by dashboard.images
    assert reasons["__MACOSX/set/red/._a.png"] == "macOS metadata (ignored)"


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"PK\3\4 not really"), "not a readable .zip"),
    (lambda p: p.write_text("hello"), "A dataset is a folder"),
])
def test_unusable_datasets_get_a_clear_message(make, message, tmp_path, eval_service, colour_model):
    path = tmp_path / ("data.zip" if "zip" in message else "data.bin")
    make(path)
    with pytest.raises(DatasetError, match=message):
        eval_service.evaluate(path, [colour_model])
    with pytest.raises(DatasetError, match="No labelled images"):
        eval_service.evaluate(_zip(tmp_path / "empty.zip", {"readme.txt": b"x"}), [colour_model])


# --- streaming: cancel and memory ---------------------------------------------------------------
def test_cancel_stops_within_one_batch(eval_service, colour_model, folder):
    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.done >= 8:
            cancel.set()

    report = eval_service.evaluate(folder, [colour_model], batch_size=8, progress=progress, cancel=cancel)
    assert report.cancelled and report.images == 8 and len(report.predictions) == 8
    assert [p.done for p in seen] == [8] and seen[0].total == 40 and seen[0].eta_s > 0


def memory_growth(service, model, tmp_path, small: int, large: int, side: int = 384) -> tuple[float, float]:
    """Peak RSS growth evaluating ``small`` then ``large`` images of side x side pixels (each
    768 KB decoded at 512: holding them all would add hundreds of MB)."""
    root = tmp_path / "many" / "red"
    root.mkdir(parents=True)
    data = evalkit.image_bytes(evalkit.colour_image("red", 0, (side, side)), "JPEG")
    for i in range(large):
        (root / f"{i:05d}.jpg").write_bytes(data)
    folder = root.parent
    service.evaluate(folder, [model], limit=small, batch_size=16)  # warm up allocators and threads
    grow_small = peak_rss_growth_mb(lambda: service.evaluate(folder, [model], limit=small, batch_size=16))
    grow_large = peak_rss_growth_mb(lambda: service.evaluate(folder, [model], limit=large, batch_size=16))
    return grow_small, grow_large


def test_memory_stays_flat_short(eval_service, colour_model, tmp_path):
    # 400 images of 384x384 decoded would be 170 MB held; streaming keeps a batch plus prefetch
    small, large = memory_growth(eval_service, colour_model, tmp_path, 50, 400)
    print(f"peak RSS growth: {small:.1f} MB for 50 images, {large:.1f} MB for 400")
    assert large - small < 40


@pytest.mark.soak
def test_memory_stays_flat_100_to_1000(eval_service, colour_model, tmp_path):
    small, large = memory_growth(eval_service, colour_model, tmp_path, 100, 1000, side=512)
    print(f"peak RSS growth: {small:.1f} MB for 100 images, {large:.1f} MB for 1,000")
    assert large - small < 100


def test_bad_options_are_refused(eval_service, colour_model, folder):
    with pytest.raises(DatasetError, match="between 1 and 4 models"):
        eval_service.evaluate(folder, [evalkit.colour_classifier(f"m{i}") for i in range(5)])
    with pytest.raises(ValueError, match="engine"):
        eval_service.evaluate(folder, [colour_model], engine="spark")
    with pytest.raises(ValueError, match="limit"):
        eval_service.evaluate(folder, [colour_model], limit=0)
    assert os.path.isdir(folder)


def test_evaluation_settings_resolve_and_validate():
    s = resolve_settings(env={"DASHBOARD_EVAL_BATCH_SIZE": "32", "DASHBOARD_EVAL_MAX_RATIO": "50"})
    assert (s.eval_batch_size, s.eval_max_ratio, s.eval_max_entries) == (32, 50.0, 10_000)
    for bad in ({"eval_batch_size": 0}, {"eval_max_ratio": 0.5}, {"eval_max_entries": 0}):
        with pytest.raises(ValueError, match="invalid setting"):
            resolve_settings(env={}, **bad)
