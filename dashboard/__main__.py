"""Command line: ``python -m dashboard [serve|classify|download|evaluate] ...`` (serve is the default)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from dashboard.errors import DashboardError
from dashboard.models.registry import DEFAULT_COMPARE_KEYS, list_keys
from dashboard.settings import resolve_settings

COMMANDS = ("serve", "classify", "download", "evaluate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dashboard", description=__doc__)
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
    classify.add_argument("--top-k", type=int, help="classes to show per model (default 3)")
    classify.add_argument("--json", action="store_true", help="print JSON instead of text")
    classify.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")

    download = sub.add_parser("download", help="fetch weights into the standard caches for offline use")
    download.add_argument("keys", nargs="*", metavar="KEY",
                          help=f"models to fetch (default: {' '.join(DEFAULT_COMPARE_KEYS)})")
    download.add_argument("--all", action="store_true", help="every built-in model")

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help"):
        argv.insert(0, "serve")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP request otherwise
    try:
        return {"serve": _serve, "classify": _classify, "download": _download,
                "evaluate": _evaluate}[args.command](args)
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
    records = []
    for image in args.images:
        for result in service.compare_models(image, keys, settings.top_k):
            records.append(_record(image, result))
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for record in records:
            print(_format(record))
    return 0


def _record(image: str, result) -> dict:
    p, t = result.prediction, result.prediction.times
    return {
        "image": image,
        "model": p.model_key,
        "top": [{"index": s.index, "label": s.label, "probability": round(s.probability, 6)} for s in p.top],
        "times_ms": {"preprocess": round(t.preprocess_ms, 2), "forward": round(t.forward_ms, 2),
                     "postprocess": round(t.postprocess_ms, 2), "total": round(t.total_ms, 2)},
        "load": result.load.describe(),
        "device": p.device,
        "parameters": p.num_params,
    }


def _format(record: dict) -> str:
    t = record["times_ms"]
    lines = [f"{record['image']}  [{record['model']} on {record['device']}; load {record['load']}; "
             f"preprocess {t['preprocess']:.1f} ms, forward {t['forward']:.1f} ms, "
             f"postprocess {t['postprocess']:.1f} ms, total {t['total']:.1f} ms]"]
    lines += [f"  {s['probability']:7.2%}  {s['label']}  (#{s['index']})" for s in record["top"]]
    return "\n".join(lines)


def _download(args: argparse.Namespace) -> int:
    from dashboard.models import torchvision_backend, transformers_backend
    from dashboard.service import ClassificationService

    service = ClassificationService(resolve_settings(), origin="cli")
    keys = list_keys() if args.all else (args.keys or list(DEFAULT_COMPARE_KEYS))
    failures = 0
    for key in keys:
        spec = service.spec(key)
        backend = torchvision_backend if spec.backend == "torchvision" else transformers_backend
        try:
            backend.fetch(spec)
        except DashboardError as exc:
            failures += 1
            print(f"error: {exc}", file=sys.stderr)
            if exc.detail:
                print(f"  ({exc.detail})", file=sys.stderr)
            continue
        print(f"ok: {key}")
    return 1 if failures else 0


def _evaluate(args: argparse.Namespace) -> int:
    from dashboard.evaluate.cli import run_evaluate

    return run_evaluate(args)


if __name__ == "__main__":
    raise SystemExit(main())
