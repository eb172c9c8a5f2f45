"""Command line: python -m dashboard [serve|classify|time|sweep|explain|evaluate|download] ... (serve is the default)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from dashboard.errors import DashboardError
from dashboard.logsetup import configure_logging
from dashboard.models.registry import DEFAULT_COMPARE_KEYS, list_keys
from dashboard.models.runtimes import PYTORCH, RUNTIMES, validate_runtime
from dashboard.settings import resolve_settings

COMMANDS = ("serve", "classify", "time", "download", "sweep", "explain", "evaluate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dashboard", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve the image classifier dashboard, or classify images and fetch weights from "
                    "the command line.",
        epilog="examples:\n"
               "  python -m dashboard                                  serve on http://127.0.0.1:7860\n"
               "  python -m dashboard classify photo.jpg --model resnet18 --top-k 5 --json\n"
               "  python -m dashboard time photo.jpg --models resnet18 squeezenet1_1 --runs 20\n"
               "  python -m dashboard download --all                   fetch every built-in model's weights")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="serve the dashboard (default)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 7860)")
    serve.add_argument("--share", action="store_true", default=None, help="create a public gradio.live link")
    serve.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    serve.add_argument("--preload", nargs="+", metavar="KEY", help="models to load before serving")

    classify = sub.add_parser("classify", help="classify image files and print the predictions")
    classify.add_argument("images", nargs="+", metavar="IMAGE")
    classify.add_argument("--model", dest="models", action="append", metavar="KEY",
                          help=f"model key or Hub id; repeat for several (default {DEFAULT_COMPARE_KEYS[0]})")
    classify.add_argument("--top-k", type=_top_k, help=f"classes to show per model, {TOP_K_MIN} to {TOP_K_MAX} (default 3)")
    classify.add_argument("--json", action="store_true", help="print JSON instead of text")
    classify.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    classify.add_argument("--runtime", help=f"{', '.join(RUNTIMES)} (default {PYTORCH}); applies to every "
                          "--model without its own '@RUNTIME' (e.g. resnet18@onnxruntime-int8)")

    timing = sub.add_parser("time", help="fair timing: one warm-up run, then N timed runs; median and spread")
    timing.add_argument("image", metavar="IMAGE")
    timing.add_argument("--models", "--model", dest="models", nargs="+", action="extend", metavar="KEY",
                        help="1 to 4 model keys or Hub ids, KEY@RUNTIME allowed; --model KEY may be repeated, as "
                             f"for classify (default {DEFAULT_COMPARE_KEYS[0]})")
    timing.add_argument("--runs", type=_whole, default=None,
                        help="timed runs per model after the warm-up, 3 to DASHBOARD_MAX_TIMING_RUNS (which is "
                             "50 unless set; default 10)")
    timing.add_argument("--runtime", help=f"{', '.join(RUNTIMES)} (default {PYTORCH}); applies to every "
                        "model without its own '@RUNTIME'")
    timing.add_argument("--json", action="store_true", help="print JSON (one record per model, with every run's times)")
    timing.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")

    sweep = sub.add_parser("sweep", help="one perturbation at several strengths: where each model's answer changes")
    sweep.add_argument("image", metavar="IMAGE")
    sweep.add_argument("--model", dest="models", action="append", metavar="KEY",
                       help=f"model key or Hub id; repeat for up to 4 (default {DEFAULT_COMPARE_KEYS[0]})")
    sweep.add_argument("--perturbation", required=True, metavar="NAME",
                       help="gaussian_blur (blur), gaussian_noise (noise), rotation, brightness, contrast, "
                            "jpeg_compression (jpeg), pixelate (downscale), occlusion")
    sweep.add_argument("--steps", type=int, help="strengths from 0 to 1, evenly spaced (default 8)")
    sweep.add_argument("--seed", type=int, help="seed of the noise (default 0)")
    sweep.add_argument("--x", type=float, default=0.5, help="occlusion patch centre, fraction of the width")
    sweep.add_argument("--y", type=float, default=0.5, help="occlusion patch centre, fraction of the height")
    output = sweep.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON (one record per model)")
    output.add_argument("--csv", action="store_true", help="print CSV (one row per model and strength)")
    sweep.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    sweep.add_argument("--runtime", help=f"{', '.join(RUNTIMES)} (default {PYTORCH}); applies to every "
                       "--model without its own '@RUNTIME'")

    explain = sub.add_parser("explain", help="draw where a model looks for a class (heatmap overlay)")
    explain.add_argument("image", metavar="IMAGE")
    explain.add_argument("--model", default=DEFAULT_COMPARE_KEYS[0], metavar="KEY",
                         help=f"model key or Hub id (default {DEFAULT_COMPARE_KEYS[0]})")
    explain.add_argument("--class", dest="target", metavar="LABEL|INDEX",
                         help="class to explain, by label or index (default: the top-1)")
    explain.add_argument("--method", default="auto",
                         help="gradcam, gradcam++, eigencam (CNNs and ViTs), rollout (ViTs); "
                              "auto (default): Grad-CAM for CNNs, rollout for ViTs")
    explain.add_argument("--opacity", type=float, help="heatmap opacity 0-1 (default 0.5)")
    explain.add_argument("--out", required=True, metavar="OVERLAY.png", help="where to write the overlay")
    explain.add_argument("--json", action="store_true", help="print the metadata as JSON")
    explain.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    explain.add_argument("--runtime", help=f"{PYTORCH} (default) only: heatmaps need PyTorch's gradients, so "
                         "another runtime is refused with the reason")

    download = sub.add_parser("download", help="fetch weights into the standard caches for offline use")
    download.add_argument("keys", nargs="*", metavar="KEY",
                          help=f"models to fetch (default: {' '.join(DEFAULT_COMPARE_KEYS)})")
    download.add_argument("--all", action="store_true", help="every built-in model")
    download.add_argument("--runtime", dest="runtimes", action="append", metavar="RUNTIME",
                          help=f"also export for this runtime ({', '.join(RUNTIMES[1:])}): export, "
                          "parity check (and int8 quantisation) ahead of time; repeat for several")

    evaluate = sub.add_parser("evaluate", help="accuracy and speed on a labelled folder, .zip or CSV")
    evaluate.add_argument("dataset", metavar="DIR|ZIP|CSV",
                          help="one subfolder per class (ImageFolder), a .zip of it, or a CSV of filename,label")
    evaluate.add_argument("--model", dest="models", action="append", metavar="KEY",
                          help=f"model key or Hub id; repeat for up to 4 (default {DEFAULT_COMPARE_KEYS[0]})")
    evaluate.add_argument("--batch-size", type=int, help="images per forward pass (default 16)")
    evaluate.add_argument("--limit", type=int, help="evaluate only the first N images")
    evaluate.add_argument("--out", metavar="results.csv", help="write one row per image and model to this CSV")
    evaluate.add_argument("--json", action="store_true", help="print the full report as JSON")
    evaluate.add_argument("--engine", choices=("local", "ray"), default="local",
                          help="local (default) or ray (Ray Data; a local Ray instance unless --address)")
    evaluate.add_argument("--address", help="Ray cluster address, e.g. ray://head:10001 or auto")
    evaluate.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    evaluate.add_argument("--runtime", help=f"{', '.join(RUNTIMES)} (default {PYTORCH}); applies to every "
                          "--model without its own '@RUNTIME' (e.g. resnet18@onnxruntime-int8)")
    return parser


TOP_K_MIN, TOP_K_MAX = 1, 10


def _top_k(text: str) -> int:
    """argparse type for --top-k: an integer in the valid range, or a message saying the range."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; choose {TOP_K_MIN} to {TOP_K_MAX}") from None
    if not TOP_K_MIN <= value <= TOP_K_MAX:
        raise argparse.ArgumentTypeError(f"{value} is out of range; choose {TOP_K_MIN} to {TOP_K_MAX}")
    return value


def _whole(text: str) -> int:
    """argparse type for --runs: a whole number (the range is the server's setting, checked by the core)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help"):
        argv.insert(0, "serve")
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        return {"serve": _serve, "classify": _classify, "time": _time, "download": _download,
                "sweep": _sweep, "explain": _explain, "evaluate": _evaluate}[args.command](args)
    except (DashboardError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if getattr(exc, "detail", None):  # the operator may see server paths
            print(f"  ({exc.detail})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _serve(args: argparse.Namespace) -> int:
    settings = resolve_settings(host=args.host, port=args.port, share=args.share,
                                device=args.device, preload=args.preload)
    from dashboard.app import serve  # after the settings: a bad one fails before gradio loads

    serve(settings)
    return 0


def _classify(args: argparse.Namespace) -> int:
    from dashboard.service import ClassificationService

    settings = resolve_settings(device=args.device, top_k=args.top_k)
    service = ClassificationService(settings, origin="cli")  # local directories allowed here
    keys = args.models or [DEFAULT_COMPARE_KEYS[0]]
    for image in args.images:  # this is the user's own machine: naming the path is what helps
        if not os.path.isfile(image):
            raise DashboardError(f"{image}: no such file" if not os.path.exists(image) else f"{image}: not a file")
    records = []
    for image in args.images:
        for result in service.compare_models(image, keys, settings.top_k, runtime=args.runtime):
            records.append(_record(image, result))
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for record in records:
            print(_format(record))
    return 0


def _record(image: str, result) -> dict:
    p, t = result.prediction, result.prediction.times
    v = result.verdict
    return {
        "image": image,
        "model": p.model_key,
        "runtime": result.info.runtime,
        "top": [{"index": s.index, "label": s.label, "probability": round(s.probability, 6)} for s in p.top],
        "times_ms": {"preprocess": round(t.preprocess_ms, 2), "forward": round(t.forward_ms, 2),
                     "postprocess": round(t.postprocess_ms, 2), "total": round(t.total_ms, 2)},
        "load_ms": None if result.load.cached else round(result.load.load_ms, 2),  # null: already loaded
        "model_cached": result.load.cached,
        "device": p.device,
        "parameters": p.num_params,
        "expected": None if result.expected is None else result.expected.name,
        "top1_right": None if v is None else v.right,
    }


def _format(record: dict) -> str:
    t = record["times_ms"]
    load = "cached" if record["model_cached"] else f"{record['load_ms']:.0f} ms"
    runtime = "" if record["runtime"] == PYTORCH else f" with {record['runtime']}"
    lines = [f"{record['image']}  [{record['model']}{runtime} on {record['device']}; load {load}; "
             f"preprocess {t['preprocess']:.1f} ms, forward {t['forward']:.1f} ms, "
             f"postprocess {t['postprocess']:.1f} ms, total {t['total']:.1f} ms]"]
    lines += [f"  {s['probability']:7.2%}  {s['label']}  (#{s['index']})" for s in record["top"]]
    if record["expected"] is not None:
        mark = {True: "right", False: "wrong", None: "no verdict"}[record["top1_right"]]
        lines.append(f"  expected: {record['expected']} -> top-1 {mark}")
    return "\n".join(lines)


def _time(args: argparse.Namespace) -> int:
    from dashboard.service import ClassificationService
    from dashboard.timing import STAGES, TOTAL

    if not os.path.isfile(args.image):  # the operator's own machine: naming the path is what helps
        raise DashboardError(f"{args.image}: no such file" if not os.path.exists(args.image)
                             else f"{args.image}: not a file")
    service = ClassificationService(resolve_settings(device=args.device), origin="cli")
    timings = service.time_models(args.image, args.models or [DEFAULT_COMPARE_KEYS[0]], args.runs,
                                  runtime=args.runtime)
    if args.json:
        print(json.dumps([{"image": args.image, **t.record()} for t in timings], indent=2))
        return 0
    for t in timings:
        runtime = "" if t.info.runtime == PYTORCH else f" with {t.info.runtime}"
        print(f"{args.image}  [{t.info.key}{runtime} on {t.device}; one warm-up run ({t.warmup_ms:.1f} ms), "
              f"then {t.runs} timed runs of batch 1]")
        for stage in (*STAGES, TOTAL):
            s = t.spread(stage)
            print(f"  {stage:<12} median {s.median_ms:8.2f} ms  IQR {s.iqr_ms:7.2f} ms  "
                  f"min {s.min_ms:8.2f} ms  max {s.max_ms:8.2f} ms")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from dashboard.service import ClassificationService

    service = ClassificationService(resolve_settings(device=args.device))
    result = service.sweep(args.image, args.models or [DEFAULT_COMPARE_KEYS[0]], args.perturbation,
                           args.steps, args.seed, args.x, args.y, runtime=args.runtime)
    if args.json:
        print(json.dumps(result.records(), indent=2))
    elif args.csv:
        frame = result.curve_frame().assign(
            model=[m.info.key for m in result.models for _ in result.strengths],
            value=[v for _ in result.models for v in result.values])
        print(frame.to_csv(index=False), end="")
    else:
        first, last = result.describe(0), result.describe(len(result.strengths) - 1)
        print(f"{args.image}: {result.perturbation} sweep, {len(result.strengths)} strengths from 0 ({first}) "
              f"to 1 ({last}), seed {result.seed}")
        for m in result.models:
            where = result.first_change(m)
            change = ("never changes" if where is None else
                      f"first changes at strength {where:.3f} ({result.describe(m.first_change_step)}) "
                      f"to {m.top1[m.first_change_step].label}")
            print(f"  {m.info.display_name}: clean top-1 {m.clean_top1.label} ({m.clean_top1.probability:.2%}); "
                  f"{change}; one forward of {m.batch_size} images, {m.forward_ms:.0f} ms")
            for s, p, t in zip(result.strengths, m.probabilities, m.top1):
                print(f"    {s:5.3f}  {p:7.2%}  {t.label}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from dashboard.service import ClassificationService

    service = ClassificationService(resolve_settings(device=args.device))
    result = service.explain(args.image, args.model, target=args.target, method=args.method,
                             opacity=args.opacity, runtime=args.runtime)
    try:
        result.overlay.save(args.out, format="PNG")
    except (OSError, ValueError) as exc:
        raise ValueError(f"could not write {args.out}: {exc}") from None
    meta = {"image": args.image, **result.metadata(), "out": args.out}
    if args.json:
        print(json.dumps(meta, indent=2))
    else:
        c = meta["class"]
        print(f"{args.image}  [{result.model_name} on {result.device}; {result.method_name}; "
              f"{result.ms:.1f} ms]\n  class {c['label']} (#{c['index']}, {c['probability']:.2%}) -> {args.out}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from dashboard.models import torchvision_backend, transformers_backend
    from dashboard.service import ClassificationService

    service = ClassificationService(resolve_settings(), origin="cli")
    keys = list_keys() if args.all else (args.keys or list(DEFAULT_COMPARE_KEYS))
    runtimes = [r for r in dict.fromkeys(validate_runtime(r) for r in args.runtimes or []) if r != PYTORCH]
    failures = 0
    for key in keys:
        spec = service.spec(key)
        backend = torchvision_backend if spec.backend == "torchvision" else transformers_backend
        try:
            backend.fetch(spec)
        except DashboardError as exc:
            failures += 1
            print(f"error: {_download_error(spec, exc)}", file=sys.stderr)
            if exc.detail:
                print(f"  ({exc.detail})", file=sys.stderr)
            continue
        print(f"ok: {key}")
        for runtime in runtimes:  # loads the model, exports, runs the parity gate, caches the file
            try:
                classifier, _ = service.model(key, runtime)
            except DashboardError as exc:
                failures += 1
                print(f"error: {exc}", file=sys.stderr)
                continue
            size = (classifier.info.file_bytes or 0) / 2**20
            print(f"ok: {key} on {runtime} ({size:.1f} MB; {classifier.info.runtime_note})")
    return 1 if failures else 0


def _download_error(spec, exc: DashboardError) -> str:
    """What went wrong while downloading: never "run this download command" as the remedy."""
    from dashboard.models.network import is_network_error, reason

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"} and spec.backend == "transformers":
        return (f"cannot download {spec.key}: HF_HUB_OFFLINE is set, so nothing is downloaded. Unset it "
                "on a machine with network, or copy a filled HF_HOME here.")
    if is_network_error(exc):
        return (f"cannot download {spec.key}: the network is unreachable from this machine "
                f"({reason(exc)}). Check the connection or proxy (HTTPS_PROXY), or copy the caches "
                "(TORCH_HOME, HF_HOME) from a machine that has the files.")
    return str(exc)


def _evaluate(args: argparse.Namespace) -> int:
    from dashboard.evaluate.cli import run_evaluate

    return run_evaluate(args)


if __name__ == "__main__":
    raise SystemExit(main())
