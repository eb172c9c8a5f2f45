"""Share links (gradio's deep links, issue 9 item 14) over plain HTTP: what a snapshot may hold and
how long it lives. The browser side (what a link restores) is tests/test_browser_share.py.

Gradio writes a snapshot per GET /gradio_api/deep_link into <upload folder>/deep_links and never
deletes one; dashboard.share_links bounds their size, number and lifetime.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

import httpx
import pytest

from dashboard.share_links import MAX_LINKS, is_usable, prune, snapshot_files

PHOTO = Path(__file__).resolve().parent.parent / "assets" / "examples" / "cat.jpg"


def _links_dir() -> Path:
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()) / "deep_links"


def _fn_index(demo, api_name: str) -> int:
    return next(fn._id for fn in demo.fns.values() if fn.api_name == api_name or fn.name == api_name)


def _run(app_url: str, demo, api_name: str, data: list, session: str, event_data: object = None) -> str:
    """One event through gradio's queue, as a browser sends it, in the session ``session``;
    the text of the completed message."""
    joined = httpx.post(f"{app_url}gradio_api/queue/join", timeout=60, json={
        "data": data, "fn_index": _fn_index(demo, api_name), "session_hash": session,
        "event_data": event_data, "trigger_id": None})
    assert joined.status_code == 200, joined.text
    with httpx.stream("GET", f"{app_url}gradio_api/queue/data", params={"session_hash": session},
                      timeout=120) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:") and '"process_completed"' in line:
                return line
    raise AssertionError("the event never completed")


def _make_link(app_url: str, session: str) -> httpx.Response:
    return httpx.get(f"{app_url}gradio_api/deep_link", params={"session_hash": session}, timeout=30)


def _config(app_url: str, link: str) -> dict:
    answer = httpx.get(f"{app_url}config", params={"deep_link": link}, timeout=30)
    assert answer.status_code == 200
    return answer.json()


def _value(config: dict, elem_id: str):
    return next(c for c in config["components"] if c["props"].get("elem_id") == elem_id)["props"].get("value")


def _classified(app_url: str, demo, session: str, image: dict) -> str:
    # the page's own route: the endpoint's first input is the per-session inputs version (State,
    # filled in by the server), then image, model, top-k, runtime
    return _run(app_url, demo, "classify_resnet", [None, image, "resnet18", 3, "pytorch"], session)


def _uploaded(app_url: str, path: Path = PHOTO) -> dict:
    with path.open("rb") as f:
        answer = httpx.post(f"{app_url}gradio_api/upload", files={"files": (path.name, f)}, timeout=30)
    assert answer.status_code == 200, answer.text
    return {"path": answer.json()[0], "meta": {"_type": "gradio.FileData"}, "orig_name": path.name}


# --- through the served app ------------------------------------------------------------------

def test_a_link_restores_its_sessions_image_and_result_and_no_other_sessions(app_url, running_app):
    mine, theirs = uuid.uuid4().hex, uuid.uuid4().hex
    assert '"success":true' in _classified(app_url, running_app, mine, _uploaded(app_url)).replace(" ", "")
    link = _make_link(app_url, mine).json()
    assert link and (_links_dir() / link / "state.json").is_file()
    config = _config(app_url, link)
    assert config["deep_link_state"] == "valid"
    assert _value(config, "shared-image")["path"].endswith("/cat.jpg")
    assert _value(config, "resnet-label")["confidences"]
    # another session that ran nothing has no results in its link, and the first link is unchanged
    _run(app_url, running_app, "check_image", [_uploaded(app_url)], theirs)
    other = _make_link(app_url, theirs).json()
    assert other != link
    assert _value(_config(app_url, other), "resnet-label") in (None, {})
    assert _make_link(app_url, mine).json() == link


def _selected_tab(config: dict):
    return next(c for c in config["components"] if c["type"] == "tabs")["props"].get("selected")


def _select_tab(app_url: str, demo, session: str, index: object) -> None:
    """The browser's tab select event, with whatever index a hostile client sends."""
    answer = httpx.post(f"{app_url}gradio_api/run/predict", timeout=30, json={
        "data": [], "fn_index": _fn_index(demo, "remember_selected_tab"), "session_hash": session,
        "event_data": {"index": index, "value": "x"}, "trigger_id": None})
    assert answer.status_code in (200, 500), answer.text
    assert "Traceback" not in answer.text


def test_the_selected_tab_is_in_the_link_and_a_hostile_index_changes_nothing(app_url, running_app):
    session = uuid.uuid4().hex
    _select_tab(app_url, running_app, session, 2)
    link = _make_link(app_url, session).json()
    assert _selected_tab(_config(app_url, link)) == "compare"
    for hostile in (99, -1, "2", True, None, [1], 2.0):
        _select_tab(app_url, running_app, session, hostile)
        assert _make_link(app_url, session).json() == link, hostile


def test_an_unknown_session_gets_no_link_and_writes_nothing(app_url):
    before = set(os.listdir(_links_dir())) if _links_dir().is_dir() else set()
    answer = _make_link(app_url, "no-such-session")
    assert answer.status_code == 200 and answer.json() == ""
    assert (set(os.listdir(_links_dir())) if _links_dir().is_dir() else set()) == before


@pytest.mark.parametrize("name", ["../../etc/passwd", "..", "a/b", "x" * 200, "%2e%2e"])
def test_a_malformed_link_is_invalid(app_url, name):
    config = _config(app_url, name)
    assert config["deep_link_state"] == "invalid"
    assert _value(config, "resnet-label") in (None, {})


def test_an_uploaded_state_json_is_not_a_link(app_url, tmp_path):
    """An upload lands in <upload folder>/<hash>/state.json; the hash must not open it as a link."""
    forged = tmp_path / "state.json"
    forged.write_text(json.dumps([{"id": 1, "type": "label", "props": {"value": {"label": "forged"}}}]))
    with forged.open("rb") as f:
        path = httpx.post(f"{app_url}gradio_api/upload", files={"files": ("state.json", f)}).json()[0]
    name = Path(path).parent.name
    assert _config(app_url, name)["deep_link_state"] == "invalid"
    assert httpx.get(app_url, params={"deep_link": name}).text.count("forged") == 0


@pytest.mark.parametrize("path", ["/etc/hostname", str(PHOTO), "../../../etc/passwd"])
def test_a_server_path_sent_as_the_image_never_reaches_a_link(app_url, running_app, path):
    """An image value naming a file the visitor never uploaded is refused before gradio keeps
    it in the session, so no link can show (or let anyone fetch) that file."""
    session = uuid.uuid4().hex
    answer = _classified(app_url, running_app, session, {"path": path, "meta": {"_type": "gradio.FileData"}})
    assert '"success":false' in answer.replace(" ", "")
    assert path not in answer and "/etc" not in answer
    link = _make_link(app_url, session).json()
    if link:
        state = (_links_dir() / link / "state.json").read_text()
        assert path not in state and os.path.abspath(path) not in state
        assert _value(_config(app_url, link), "shared-image") is None


def test_a_snapshot_over_the_size_cap_is_refused_and_not_kept(app_url, running_app):
    """A hostile client makes its session hold 2 MB (the Hub-id box takes any text before
    checking it) and asks for a link: 413 with a short message, and nothing left on disk."""
    session = uuid.uuid4().hex
    _run(app_url, running_app, "classify_vit",  # the inputs version (State) first, as the page sends it
         [None, _uploaded(app_url), "google/vit-base-patch16-224", "x" * (2 * 2**20), 3, "pytorch"], session)
    before = set(os.listdir(_links_dir()))
    answer = _make_link(app_url, session)
    assert answer.status_code == 413
    detail = answer.json()["detail"]
    assert "too much to share" in detail and "/" not in detail.replace(" MB", "")
    assert set(os.listdir(_links_dir())) == before


def test_an_expired_link_is_deleted_and_served_as_invalid(app_url, running_app):
    session = uuid.uuid4().hex
    _classified(app_url, running_app, session, _uploaded(app_url))
    link = _make_link(app_url, session).json()
    state = _links_dir() / link / "state.json"
    old = time.time() - 3601  # DELETE_CACHE's age: the sweep deletes uploads after an hour
    os.utime(state, (old, old))
    assert _config(app_url, link)["deep_link_state"] == "invalid"
    assert not state.parent.exists()


def test_a_link_whose_upload_was_swept_is_invalid(app_url, running_app, tmp_path):
    session = uuid.uuid4().hex
    photo = tmp_path / "swept.jpg"
    photo.write_bytes(PHOTO.read_bytes() + uuid.uuid4().bytes)  # a file of its own in the cache
    image = _uploaded(app_url, photo)
    _classified(app_url, running_app, session, image)
    link = _make_link(app_url, session).json()
    assert _config(app_url, link)["deep_link_state"] == "valid"
    os.remove(image["path"])  # what delete_cache does an hour after the upload
    page = httpx.get(app_url, params={"deep_link": link})
    assert page.status_code == 200 and '"deep_link_state":"invalid"' in page.text.replace(" ", "")
    assert not (_links_dir() / link).exists()


def test_the_number_of_links_kept_is_bounded(app_url, running_app):
    folder = _links_dir()
    folder.mkdir(exist_ok=True)
    for i in range(MAX_LINKS + 5):  # another visitor's flood of links, all fresh
        (folder / f"flood{i}").mkdir(exist_ok=True)
        (folder / f"flood{i}" / "state.json").write_text("[]")
    try:
        session = uuid.uuid4().hex
        _classified(app_url, running_app, session, _uploaded(app_url))
        link = _make_link(app_url, session).json()
        assert len(os.listdir(folder)) <= MAX_LINKS
        assert (folder / link / "state.json").is_file()  # the newest link is kept
        assert _config(app_url, link)["deep_link_state"] == "valid"
    finally:
        for left in folder.glob("flood*"):
            shutil.rmtree(left, ignore_errors=True)


# --- the helpers on their own ------------------------------------------------------------------

def _fake_link(folder: Path, name: str, age: float, state: object = ()) -> Path:
    (folder / name).mkdir(parents=True)
    path = folder / name / "state.json"
    path.write_text(json.dumps(list(state)))
    mtime = time.time() - age
    os.utime(path, (mtime, mtime))
    return folder / name


def test_prune_keeps_the_newest_links_younger_than_the_ttl(tmp_path):
    for i, age in enumerate([10, 20, 30, 40, 5000]):
        _fake_link(tmp_path, f"link{i}", age)
    (tmp_path / "half-written").mkdir()  # no state.json: gone too
    assert prune(tmp_path, ttl=3600, max_links=3) == 3
    assert sorted(os.listdir(tmp_path)) == ["link0", "link1", "link2"]


def test_a_snapshot_is_usable_only_while_its_uploads_exist(tmp_path):
    uploads = tmp_path / "uploads"
    (uploads / "abc").mkdir(parents=True)
    image = uploads / "abc" / "photo.jpg"
    image.write_bytes(b"jpeg")
    value = {"path": str(image), "meta": {"_type": "gradio.FileData"}}
    elsewhere = {"path": "https://example.org/x.png", "meta": {"_type": "gradio.FileData"}}
    link = _fake_link(uploads / "deep_links", "l", 0, [{"props": {"value": value}}, {"props": {"x": elsewhere}}])
    assert list(snapshot_files(json.loads((link / "state.json").read_text()))) == [str(image),
                                                                                     elsewhere["path"]]
    assert is_usable(link, ttl=60)
    assert not is_usable(link, ttl=60, now=time.time() + 61)
    image.unlink()
    assert not is_usable(link, ttl=60)

