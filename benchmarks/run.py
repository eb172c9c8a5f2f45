"""Benchmark the dashboard against the reference pipelines; prints one markdown table.

Usage (from the repository root, in the project's virtual environment)::

    python benchmarks/run.py                       # everything: about 3-4 minutes on 2 CPU cores
    python benchmarks/run.py --json bench.json     # also write every number, raw samples included
    python benchmarks/run.py --cache ~/.cache/dashboard-bench   # keep and reuse the random-init caches
    python benchmarks/run.py --no-browser          # skip the headless-Chromium measurements
    python benchmarks/run.py --help                # run counts (--runs-cnn, --api-runs, ...)

It never touches the network. It writes random-init, full-size checkpoints of resnet18 and
google/vit-base-patch16-224 with ``dashboard.random_weights`` into a temporary
``TORCH_HOME``/``HF_HOME`` (the real cache layouts, so the real loading code runs), or, with
``--cache DIR``, into ``DIR/torch`` and ``DIR/hf`` where missing. It sets ``HF_HUB_OFFLINE=1``,
``GRADIO_ANALYTICS_ENABLED=False`` and ``DASHBOARD_DEVICE=cpu`` for itself and for the servers it
starts (``GRADIO_TEMP_DIR`` is a temporary folder, removed at the end unless ``--keep``). Random
weights measure speed and plumbing, never accuracy. The browser part needs Debian's Chromium at
``/usr/bin/chromium``. Progress goes to stderr; the report goes to stdout: the machine, one
markdown table, then each target as a ratio, met or not.

Everything is measured in the same run, on ``assets/examples/cat.jpg`` (451x300):

1. Per model, the median preprocess / forward / postprocess / other / total ms over N runs after
   warm-up, all pipelines interleaved round-robin so that the machine's drift hits them alike:
   our ``Classifier`` stages on the decoded PIL image; our ``service.classify(path)`` with the
   result cache off (other = read, sha256, checks, decode, hand-off to the batcher); the Gradio
   callback's body ``Handlers.classify`` (+ the latency DataFrame and model card); torchvision's
   reference (``weights.transforms()`` + model + softmax/top-k, same weights file); for the ViT
   the transformers reference (``AutoImageProcessor`` + model) and
   ``pipeline("image-classification")`` (its preprocess/forward/postprocess called one by one,
   and the whole call); the seed tutorial's predict (``ToTensor()`` on the full-size image, no
   resize or normalisation, softmax, a dict of all 1000 classes; the ViT refuses a 451x300
   input, so its row resizes to 224x224 first and quotes the error). Decoding has its own rows.
   The reference pipelines start from the decoded image, like our Classifier row.
2. Cold start: ``python -m dashboard --port P`` (a subprocess) to the first HTTP 200 on ``/``,
   next to ``python -c "import gradio"`` (median of 3, interleaved); whether torch was loaded at
   start-up; first-use load time per model, in-process (``LoadInfo.load_ms``) and in the
   server (the ``load`` column of its first answer).
3. End to end, resnet18, a distinct image per request (a random 16x16 patch in the middle, so
   the result cache never answers): ``/classify_resnet`` through ``gradio_client`` and through
   plain HTTP (``/gradio_api/upload`` then ``/gradio_api/call/classify_resnet``, SSE read as it
   arrives: gradio_client polls its queue every 50 ms), each next to the server's own stage
   times and to a no-op app (``benchmarks/noop_app.py``: the same ``RawImage`` input and a
   ``gr.Label`` out; a second endpoint with the same three outputs as ``/classify_resnet``).
   Click-to-label in headless Chromium: a new image is uploaded into ``#shared-image`` (timed
   apart), ``#resnet-run`` is clicked, and ``performance.now()`` is read when ``#resnet-label``
   changes; the same on the no-op app.
4. Throughput: 8 concurrent clients vs 1 client in sequence (requests/s, resnet18, distinct
   images), with gradio_client and with plain HTTP, 3 interleaved rounds; the core alone
   (``service.classify`` in 8 threads) for comparison.
5. Server memory: RSS (psutil) after start, after resnet18's use, after the throughput runs, and
   the peak (VmHWM) with both defaults loaded, next to the two models' weight bytes.
6. An identical repeat (same bytes, model, top-k) with the result cache on, in the core.

7+. Capability sections: every module ``benchmarks/section_*.py`` (heatmaps, robustness, runtimes,
   evaluation, hardening...) adds its own rows and targets to the same table. ``--only NAME``
   runs just ``section_NAME`` (and the cache preparation), ``--skip-sections`` leaves them out.

Ratios of pipelines (targets 1) are medians of per-round ratios. The client, the servers and the
browser share the machine's cores, as on a one-box deployment.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RUNS = {"cnn": 20, "vit": 16, "repeat": 20}
WARMUP = {"cnn": 3, "vit": 3}
CLIENTS, PER_CLIENT, SEQUENTIAL = 8, 4, 16
DEVICE = "cpu"  # the targets are for CPU; the references run on CPU too


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python benchmarks/run.py", description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, metavar="DIR",
                   help="reuse DIR/torch and DIR/hf (random weights are written only where missing)")
    p.add_argument("--json", type=Path, help="also write all results to this JSON file")
    p.add_argument("--runs-cnn", type=int, default=RUNS["cnn"], help="timed runs per resnet18 pipeline")
    p.add_argument("--runs-vit", type=int, default=RUNS["vit"], help="timed runs per ViT pipeline")
    p.add_argument("--api-runs", type=int, default=20, help="timed API calls per endpoint")
    p.add_argument("--browser-runs", type=int, default=10, help="timed clicks per app")
    p.add_argument("--starts", type=int, default=3, help="cold starts (and `import gradio` runs)")
    p.add_argument("--rounds", type=int, default=3, help="throughput rounds")
    p.add_argument("--no-browser", action="store_true", help="skip the headless-Chromium section")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, images, caches)")
    p.add_argument("--only", metavar="NAME", action="append",
                   help=f"run only these capability sections (of: {', '.join(section_names()) or 'none'})")
    p.add_argument("--skip-sections", action="store_true", help="leave the capability sections out")
    return p.parse_args(argv)


def section_names() -> list[str]:
    """Capability sections: the modules benchmarks/section_NAME.py, in name order."""
    return sorted(p.stem.removeprefix("section_") for p in Path(__file__).parent.glob("section_*.py"))


def run_sections(names: list[str], work: Path, log) -> tuple[list, list, dict]:
    """Each section module exposes ``run(work: Path, log) -> (rows, targets, raw)``: rows and
    targets of report.Row / report.Target, and a JSON-able dict of raw samples. Each section
    starts from the prepared caches (TORCH_HOME / HF_HOME set) and cleans up after itself."""
    import importlib

    rows, targets, raw = [], [], {}
    for name in names:
        log(f"[section] {name}")
        module = importlib.import_module(f"benchmarks.section_{name}")
        section_rows, section_targets, raw[name] = module.run(work / f"section-{name}", log)
        rows += section_rows
        targets += section_targets
    return rows, targets, raw


def prepare_caches(cache: Path) -> None:
    """Point TORCH_HOME/HF_HOME at ``cache`` and write what is missing there.

    Must run before anything imports huggingface_hub (it reads HF_HOME once, at import)."""
    os.environ.update({
        "TORCH_HOME": str(cache / "torch"), "HF_HOME": str(cache / "hf"),
        "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False",
        "TOKENIZERS_PARALLELISM": "false",
        # sections 2-5 time first loads themselves; section_startup measures the preload
        "DASHBOARD_BACKGROUND_PRELOAD": "false",
        "DASHBOARD_AUTO_RUN": "false",  # the browser rows time a click, not the run an upload starts
    })
    from dashboard import random_weights
    from dashboard.models.registry import get_spec
    from dashboard.models.torchvision_backend import checkpoint_path

    if not checkpoint_path(get_spec("resnet18")).is_file():
        log("  writing random-init resnet18 into TORCH_HOME")
        random_weights.write_torchvision_checkpoint("resnet18", cache / "torch")
    if not (cache / "hf" / "hub" / "models--google--vit-base-patch16-224" / "refs" / "main").is_file():
        log("  writing random-init full-size google/vit-base-patch16-224 into HF_HOME")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        random_weights.write_hub_checkpoint("google/vit-base-patch16-224", cache / "hf", tiny=False)


def machine(stages: dict) -> dict:
    import gradio
    import gradio_client
    import psutil
    import torch
    import torchvision
    import transformers

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": len(os.sched_getaffinity(0)),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "transformers": transformers.__version__, "gradio": gradio.__version__,
        "gradio_client": gradio_client.__version__, "torch_threads": stages["torch_threads"],
        "torch_interop_threads": torch.get_num_interop_threads(), "device": stages["device"],
        "dashboard_env": {k: v for k, v in os.environ.items() if k.startswith("DASHBOARD_")},
    }


def machine_line(m: dict, photo_size) -> str:
    from dashboard.settings import resolve_settings

    s = resolve_settings()
    return (f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM; Python {m['python']}, "
            f"torch {m['torch']} ({m['torch_threads']} intra-op / {m['torch_interop_threads']} inter-op "
            f"threads once the service has set them), torchvision {m['torchvision']}, transformers "
            f"{m['transformers']}, gradio {m['gradio']}, gradio_client {m['gradio_client']}; device "
            f"{m['device']}; server settings: workers={s.workers}, max_batch_size={s.max_batch_size}, "
            f"result_cache_size={s.result_cache_size}; random-init full-size weights; photo "
            f"assets/examples/cat.jpg {photo_size[0]}x{photo_size[1]}.")


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    from benchmarks.util import ForeignLoad

    foreign = ForeignLoad()
    work = Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    cache = args.cache.expanduser().resolve() if args.cache else work / "cache"
    servers = []
    try:
        log(f"caches in {cache}; scratch in {work}")
        prepare_caches(cache)
        os.environ["GRADIO_TEMP_DIR"] = str(work / "gradio")
        os.environ["DASHBOARD_DEVICE"] = DEVICE  # the servers' too

        from benchmarks import pipelines, report, server
        from benchmarks.util import PHOTO, ImagePool, distinct_images

        unknown = set(args.only or ()) - set(section_names())
        if unknown:
            raise SystemExit(f"unknown section(s): {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(section_names())}")
        if args.only:
            return _only_sections(args, work, started, foreign)

        runs_api, rounds = args.api_runs, args.rounds
        n_images = (2 * 3 * (runs_api + 3) + 2 + 3 * rounds * (SEQUENTIAL + CLIENTS * PER_CLIENT) + 1
                    + 3 * (args.browser_runs + 2) + 8)
        pool = ImagePool(distinct_images(PHOTO, work / "images", n_images))
        results: dict = {}

        log("[1] pipelines, in-process")
        results["stages"] = pipelines.run(PHOTO, DEVICE, {"cnn": args.runs_cnn, "vit": args.runs_vit,
                                                         "repeat": RUNS["repeat"]}, WARMUP, log)
        results["machine"] = machine(results["stages"])
        log("[4] throughput of the core alone, in-process")
        results["core_throughput"] = pipelines.core_throughput(
            pool.take(1 + rounds * (SEQUENTIAL + CLIENTS * PER_CLIENT)), DEVICE, CLIENTS, PER_CLIENT,
            SEQUENTIAL, rounds)

        env = server.server_env(dict(os.environ), work / "gradio")
        log("[2] cold start")
        results["startup"], dash = server.cold_start(env, work, args.starts, log)
        servers.append(dash)
        floor = server.noop_server(env, work)
        servers.append(floor)
        floor.start()
        rss = results["rss_mb"] = {"idle": dash.rss_mb()}

        log("[3] API latency (gradio_client)")
        results["api"] = server.api_latency(dash, floor, pool, runs_api, 3, log)
        rss["after_first_resnet_and_api"] = dash.rss_mb()
        log("[3] API latency (plain HTTP)")
        results["raw"] = server.raw_latency(dash, floor, pool, runs_api, 3)
        log("[4] throughput through the API")
        results["throughput"] = server.throughput(dash, pool, CLIENTS, PER_CLIENT, SEQUENTIAL, rounds,
                                                  "gradio_client", log)
        results["throughput_raw"] = server.throughput(dash, pool, CLIENTS, PER_CLIENT, SEQUENTIAL, rounds,
                                                      "plain HTTP", log)
        rss["after_throughput"] = dash.rss_mb()
        if args.no_browser:
            results["browser"] = {"error": "skipped (--no-browser)"}
        else:
            log("[3] browser click-to-label")
            from benchmarks import browser

            results["browser"] = browser.click_to_label(dash.url, floor.url, pool, args.browser_runs, 2, log)
        log("[5] memory with both default models")
        results["memory"] = server.memory_with_both_models(dash, pool, vit_calls=3, log=log)
        for srv in servers:  # the sections measure on a quiet machine
            srv.stop()
        extra_rows, extra_targets, results["sections"] = (
            ([], [], {}) if args.skip_sections else run_sections(section_names(), work, log))
    finally:
        for s in servers:
            s.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")

    rows = report.build_rows(results) + extra_rows
    targets = report.build_targets(results) + extra_targets
    runtime = time.perf_counter() - started
    results["foreign_load"] = load = foreign.result()
    m = results["machine"]
    print(machine_line(m, results["stages"]["photo"]["size"]))
    top = ", ".join(f"{name} {cpu:.0f} s" for name, cpu in load["top"]) or "none"
    print(f"Other processes on the machine used {load['cpu_s']:.0f} CPU-seconds during the run, "
          f"{load['share']:.0%} of its capacity (top: {top}); absolute times move with that, ratios "
          f"measured side by side much less.")
    print_table(rows, targets, runtime)
    if args.json:
        args.json.write_text(json.dumps({**report.as_json(rows, targets), "machine": m, "runtime_s": runtime,
                                         "results": results}, indent=2, default=str) + "\n")
        log(f"wrote {args.json}")
    return 0


def print_table(rows: list, targets: list, runtime_s: float) -> None:
    """The one table, the targets as ratios, and the run's duration."""
    from benchmarks import report

    print()
    print(report.markdown(rows))
    print()
    print("Targets:")
    for target in targets:
        print(target.line())
    print()
    print(f"Runtime: {runtime_s:.0f} s")


def _only_sections(args: argparse.Namespace, work: Path, started: float, foreign) -> int:
    """``--only NAME``: the named capability sections alone, printed as the same kind of table."""
    from benchmarks import report

    try:
        rows, targets, raw = run_sections(args.only, work, log)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load = foreign.result()
    print(f"Sections {', '.join(args.only)}; other processes used {load['cpu_s']:.0f} CPU-seconds "
          f"({load['share']:.0%} of the machine) during the run.")
    print_table(rows, targets, time.perf_counter() - started)
    if args.json:
        args.json.write_text(json.dumps({**report.as_json(rows, targets), "sections": raw}, indent=2,
                                        default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
