"""Issue 8 (hardening, round 2), measured against a real server over plain HTTP.

``python benchmarks/run.py --only hardening`` runs it on this checkout. The same measurements
run on another checkout (e.g. main before the fix, made with ``git worktree add /tmp/i8-before
main``) with ``HARDENING_CODE_ROOT=/tmp/i8-before python benchmarks/run.py --only hardening``:
the server is started from that folder, everything else (client, caches, images) is this one.

1. Model ids naming server paths (/classify_vit's custom id): how many distinct messages six
   probes get (an existing folder, a planted checkpoint, a missing path, ".", ...), whether the
   planted checkpoint is served, whether a server path reaches the browser.
2. A victim's SqueezeNet 1.1 latency (upload + /classify_resnet, distinct images) on an idle
   server, then while eight attackers keep asking for configs with 20,000 layers that they
   planted (a Hub repository is anyone's to create; here they sit in the offline Hub cache).
   Target: within 2x of idle.
3. Memory budget (DASHBOARD_MEMORY_BUDGET_MB=100): a client cycles for 30 s through ResNet-18,
   SqueezeNet, ViT-B/16 and a ViT-B/16 checkpoint folder spelled x, x/ and x/.; the server's
   peak RSS growth next to budget + the largest model.
4. A 200 MB image sent base64-encoded in the JSON of /gradio_api/call/classify_resnet (the
   upload cap is 20 MB): the answer, the server's RSS growth, bytes written to its temp folder.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.report import Row, Target
from benchmarks.server import RawClient, first_200, free_port
from benchmarks.util import PHOTO, ROOT, ImagePool, distinct_images, median, stop_process, timed

ATTACKERS = 8
LAYERS = 20_000
VICTIM = "squeezenet1_1"
VIT = "google/vit-base-patch16-224"
BUDGET_MB = 100
CYCLE_S = 30.0
DATA_URL_MB = 200
ATTACK_PAUSE_S = 0.5
VICTIM_DEADLINE_S = 120.0  # a victim request still unanswered then counts as 120 s
PHASES = ("paths", "victim", "budget", "data_url")  # HARDENING_PHASES=paths,budget runs some


class Server:
    """``python -m dashboard`` started from ``code_root`` (this checkout or another one)."""

    def __init__(self, code_root: Path, work: Path, name: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.tmp = work / f"gradio-tmp-{name}"
        self.tmp.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, "GRADIO_TEMP_DIR": str(self.tmp), "DASHBOARD_DEVICE": "cpu",
                    "PYTHONPATH": str(code_root), **env}
        self.log_path = work / f"server-{name}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "dashboard", "--port", str(self.port)],
                                         cwd=code_root, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        if not first_200(self.url, time.monotonic() + 180, self.proc):
            self.stop()
            raise RuntimeError(f"server {name} did not start:\n{self.log_path.read_text()[-2000:]}")

    def rss_mb(self) -> float:
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def peak_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def temp_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.tmp.rglob("*") if p.is_file())

    def stop(self) -> None:
        stop_process(self.proc)


def _plant(hf_home: Path, work: Path) -> list[str]:
    """Eight configs of 20,000 tiny layers in the Hub cache, as attackers' repositories."""
    from dashboard import random_weights

    repos = []
    for i in range(ATTACKERS):
        repo = f"attacker/layers-{i}"
        folder = work / "planted" / repo.replace("/", "--")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps({
            "model_type": "vit", "architectures": ["ViTForImageClassification"], "num_hidden_layers": LAYERS,
            "hidden_size": 8, "num_attention_heads": 1, "intermediate_size": 8, "num_labels": 2}))
        random_weights.install_snapshot(repo, hf_home, folder)
        repos.append(repo)
    return repos


def _bounded(call, deadline_s: float) -> float:
    """The call's milliseconds, or deadline_s * 1000 when it has not answered by then (it is
    abandoned; the server is stopped afterwards)."""
    out: list[float] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    thread.join(deadline_s)
    return out[0] if out else deadline_s * 1e3


def _victim_call(client: RawClient, pool: ImagePool) -> float:
    file = client.upload(pool.one())
    return timed(client.call, "classify_resnet", [file, VICTIM, 3, "pytorch"])[1]


def _message(client: RawClient, api: str, data: list) -> tuple[bool, str]:
    try:
        out = client.call(api, data)
        return True, json.dumps(out)
    except RuntimeError as exc:
        return False, str(exc)


# --- 1. ids naming server paths --------------------------------------------------------------
def probe_paths(code_root: Path, work: Path, snapshot: Path, pool: ImagePool, log) -> dict:
    existing = work / "a-private-folder"
    existing.mkdir(exist_ok=True)
    probes = [str(snapshot), str(existing), str(work / "missing"), ".", "/etc", "/etc/nonexistent"]
    code_root = Path(code_root)
    server = Server(code_root, work, "paths", {})
    client = RawClient(server.url)
    try:
        file = client.upload(pool.one())
        answers = {p: _message(client, "classify_vit", [file, VIT, p, 3]) for p in probes}
    finally:
        client.close()
        server.stop()
    # the probe's own text, quoted back, is not a leak: compare the answers without quoted parts
    unquoted = {p: re.sub(r"'[^']*'", "<ID>", text) for p, (_, text) in answers.items()}
    normalised = set(unquoted.values())
    server_paths = (str(work), str(code_root), os.environ["HF_HOME"], os.environ["TORCH_HOME"])
    leaked = [p for p, text in unquoted.items() if any(path in text for path in server_paths)]
    log(f"  paths: {len(normalised)} distinct answers; planted served: {answers[str(snapshot)][0]}")
    return {"distinct_answers": len(normalised), "planted_served": answers[str(snapshot)][0],
            "answers_with_server_paths": len(leaked), "answers": {p: t[:300] for p, (_, t) in answers.items()}}


# --- 2. a victim while eight attackers plant configs -------------------------------------------
def victim_under_attack(code_root: Path, work: Path, repos: list[str], pool: ImagePool, log,
                        runs: int = 8, attack_runs: int = 3) -> dict:
    server = Server(code_root, work, "victim", {})
    victim = RawClient(server.url)
    stop = threading.Event()
    attack_answers: list[float] = []
    try:
        for _ in range(2):
            _victim_call(victim, pool)  # load + warm
        idle = [_victim_call(victim, pool) for _ in range(runs)]
        log(f"  victim idle median {median(idle):.0f} ms")
        image = victim.upload(pool.one())

        answered = [threading.Event() for _ in repos]

        def attack(repo: str, done: threading.Event) -> None:
            # one request at a time per attacker, sent again ATTACK_PAUSE_S after each answer:
            # eight planted configs always in flight or just refused, not a flood of requests
            # (a flood of any request, even an unknown id, saturates 2 cores on its own)
            attacker = RawClient(server.url)
            try:
                while not stop.is_set():
                    _, ms = timed(_message, attacker, "classify_vit", [image, VIT, repo, 3])
                    attack_answers.append(ms)
                    done.set()
                    stop.wait(ATTACK_PAUSE_S)
            finally:
                attacker.close()

        threads = [threading.Thread(target=attack, args=(repo, done), daemon=True)
                   for repo, done in zip(repos, answered)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60  # the attack has reached the server (or is stuck in it)
        for done in answered:
            done.wait(max(0.0, deadline - time.monotonic()))
        attacked = []
        for _ in range(attack_runs):
            ms = _bounded(lambda: _victim_call(victim, pool), VICTIM_DEADLINE_S)
            attacked.append(ms)
            log(f"  victim under attack: {ms:.0f} ms")
            if ms >= VICTIM_DEADLINE_S * 1e3:
                break  # no answer within the deadline: the rest would wait as long
        stop.set()
        peak = server.peak_mb()
    finally:
        stop.set()
        victim.close()
        server.stop()  # attackers still waiting get a closed connection
    return {"idle_ms": idle, "attacked_ms": attacked, "attack_answer_ms": attack_answers,
            "idle_median_ms": median(idle), "attacked_median_ms": median(attacked), "server_peak_mb": peak}


# --- 3. the memory budget under a client cycling through models and spellings ------------------
def cycle_models(code_root: Path, work: Path, snapshot: Path, pool: ImagePool, log) -> dict:
    server = Server(code_root, work, "budget", {"DASHBOARD_MEMORY_BUDGET_MB": str(BUDGET_MB),
                                                "DASHBOARD_RESULT_CACHE_SIZE": "0"})
    client = RawClient(server.url)
    plan = [("classify_resnet", "resnet18"), ("classify_resnet", VICTIM), ("classify_vit", VIT),
            ("classify_vit", str(snapshot)), ("classify_vit", f"{snapshot}/"), ("classify_vit", f"{snapshot}/.")]
    answers = {"ok": 0, "refused": 0}
    try:
        file = client.upload(pool.one())
        client.call("classify_resnet", [file, "resnet18", 3, "pytorch"])
        baseline = server.rss_mb()
        rss = [baseline]
        deadline = time.monotonic() + CYCLE_S
        while time.monotonic() < deadline:
            for api, key in plan:
                data = [file, key, 3] if api == "classify_resnet" else [file, VIT, key, 3]
                ok, _ = _message(client, api, data)
                answers["ok" if ok else "refused"] += 1
                rss.append(server.rss_mb())
        peak = max(rss)
    finally:
        client.close()
        server.stop()
    log(f"  budget: RSS {baseline:.0f} -> peak {peak:.0f} MB ({answers})")
    return {"baseline_mb": baseline, "peak_mb": peak, "end_mb": rss[-1], "growth_mb": peak - baseline,
            "answers": answers, "samples": len(rss)}


# --- 4. a data: URL past the upload cap ---------------------------------------------------------
def data_url_over_cap(code_root: Path, work: Path, log) -> dict:
    import httpx

    server = Server(code_root, work, "dataurl", {})
    try:
        httpx.get(server.url, timeout=30)
        before_rss, before_bytes = server.rss_mb(), server.temp_bytes()
        raw = b"\x89PNG\r\n\x1a\n" + bytes(DATA_URL_MB * 2**20)
        body = json.dumps({"data": [{"url": "data:image/png;base64," + base64.b64encode(raw).decode(),
                                     "meta": {"_type": "gradio.FileData"}}, VICTIM, 3]})
        del raw
        start = time.perf_counter()
        answer = httpx.post(f"{server.url}gradio_api/call/classify_resnet", content=body, timeout=300,
                            headers={"content-type": "application/json"})
        status, text = answer.status_code, answer.text[:300]
        if status == 200:  # queued: read the outcome
            event = answer.json()["event_id"]
            text = httpx.get(f"{server.url}gradio_api/call/classify_resnet/{event}", timeout=300).text[-300:]
        elapsed = time.perf_counter() - start
        time.sleep(0.5)
        result = {"status": status, "answer": text, "seconds": elapsed,
                  "rss_before_mb": before_rss, "rss_after_mb": server.rss_mb(), "peak_mb": server.peak_mb(),
                  "written_mb": (server.temp_bytes() - before_bytes) / 2**20}
    finally:
        server.stop()
    log(f"  data: URL of {DATA_URL_MB} MB: HTTP {status}, written {result['written_mb']:.0f} MB")
    return result


def run(work: Path, log) -> tuple[list[Row], list[Target], dict]:
    from dashboard import random_weights

    code_root = Path(os.environ.get("HARDENING_CODE_ROOT", ROOT)).resolve()
    work.mkdir(parents=True, exist_ok=True)
    hf_home, torch_home = Path(os.environ["HF_HOME"]), Path(os.environ["TORCH_HOME"])
    if not any((torch_home / "hub" / "checkpoints").glob("squeezenet1_1-*.pth")):
        random_weights.write_torchvision_checkpoint(VICTIM, torch_home)
    refs = (hf_home / "hub" / f"models--{VIT.replace('/', '--')}" / "refs" / "main").read_text().strip()
    snapshot = hf_home / "hub" / f"models--{VIT.replace('/', '--')}" / "snapshots" / refs  # a Hub-cache folder
    repos = _plant(hf_home, work)
    pool = ImagePool(distinct_images(PHOTO, work / "images", 80))
    where = "this checkout" if code_root == ROOT else str(code_root)
    log(f"  hardening: server code from {where}")

    phases = os.environ.get("HARDENING_PHASES", ",".join(PHASES)).split(",")
    raw = {"code_root": str(code_root)}
    if "paths" in phases:
        raw["paths"] = probe_paths(code_root, work, snapshot, pool, log)
    if "victim" in phases:
        raw["victim"] = victim_under_attack(code_root, work, repos, pool, log)
    if "budget" in phases:
        raw["budget"] = cycle_models(code_root, work, snapshot, pool, log)
    if "data_url" in phases:
        raw["data_url"] = data_url_over_cap(code_root, work, log)
    shutil.rmtree(work / "planted", ignore_errors=True)
    tag = "" if code_root == ROOT else f" [server code: {code_root}]"
    rows, targets = _report(raw, tag)
    return rows, targets, raw


def _report(raw: dict, tag: str) -> tuple[list[Row], list[Target]]:
    rows: list[Row] = []
    targets: list[Target] = []
    if "paths" in raw:
        p = raw["paths"]
        rows.append(Row(f"[H1] path probes as model ids: distinct answers (6 probes){tag}",
                        total=p["distinct_answers"], digits=0,
                        notes=f"planted checkpoint served: {p['planted_served']}; answers quoting a "
                              f"server path: {p['answers_with_server_paths']}"))
        targets.append(Target(f"path probes get one answer, nothing served{tag}", f"{p['distinct_answers']} answers",
                              float(p["distinct_answers"]), "1",
                              p["distinct_answers"] == 1 and not p["planted_served"]))
    if "victim" in raw:
        v = raw["victim"]
        rows.append(Row(f"[H2] victim {VICTIM}, idle server (upload + call, ms){tag}", total=v["idle_median_ms"],
                        notes=f"median of {len(v['idle_ms'])}"))
        rows.append(Row(
            f"[H2] victim {VICTIM}, {ATTACKERS} attackers planting {LAYERS:,}-layer configs (ms){tag}",
            total=v["attacked_median_ms"],
            notes=f"median of {len(v['attacked_ms'])} (deadline {VICTIM_DEADLINE_S:.0f} s); attackers' answers: "
                  f"{len(v['attack_answer_ms'])}, median {median(v['attack_answer_ms']) or 0:.0f} ms; "
                  f"server peak RSS {v['server_peak_mb']:.0f} MB"))
        ratio = v["attacked_median_ms"] / v["idle_median_ms"] if v["idle_median_ms"] else None
        targets.append(Target(f"victim latency under {ATTACKERS} attackers <= 2x idle{tag}",
                              f"{v['attacked_median_ms']:.0f} vs {v['idle_median_ms']:.0f} ms", ratio, "<= 2",
                              None if ratio is None else ratio <= 2))
    if "budget" in raw:
        b = raw["budget"]
        largest_mb = 330  # ViT-B/16 weights
        rows.append(Row(f"[H3] RSS growth, {CYCLE_S:.0f} s cycling models and spellings, budget {BUDGET_MB} MB "
                        f"(MB){tag}", total=b["growth_mb"], digits=0,
                        notes=f"RSS {b['baseline_mb']:.0f} -> peak {b['peak_mb']:.0f} MB; answers {b['answers']}"))
        targets.append(Target(f"RSS growth <= budget + largest model{tag}",
                              f"{b['growth_mb']:.0f} vs {BUDGET_MB} + {largest_mb} MB",
                              b["growth_mb"] / (BUDGET_MB + largest_mb), "<= 1",
                              b["growth_mb"] <= BUDGET_MB + largest_mb))
    if "data_url" in raw:
        d = raw["data_url"]
        rows.append(Row(f"[H4] {DATA_URL_MB} MB image as a base64 data: URL, cap 20 MB: written to disk (MB){tag}",
                        total=d["written_mb"], digits=0,
                        notes=f"HTTP {d['status']} in {d['seconds']:.1f} s; RSS {d['rss_before_mb']:.0f} -> "
                              f"{d['rss_after_mb']:.0f} MB (peak {d['peak_mb']:.0f})"))
        targets.append(Target(f"data: URL past the cap refused, nothing written{tag}",
                              f"HTTP {d['status']}, {d['written_mb']:.0f} MB written", None, "413, 0 MB",
                              d["status"] == 413 and d["written_mb"] < 1))
    return rows, targets
