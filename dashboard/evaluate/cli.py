"""``python -m dashboard evaluate``: the report as text or JSON, a progress bar on stderr."""

from __future__ import annotations

import argparse
import sys

from dashboard.evaluate.engine import Progress
from dashboard.evaluate.metrics import EvaluationReport


def run_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from dashboard.models.registry import DEFAULT_COMPARE_KEYS
    from dashboard.service import ClassificationService
    from dashboard.settings import resolve_settings

    if args.address and args.engine != "ray":
        raise ValueError("--address is for --engine ray")
    settings = resolve_settings(device=args.device, eval_batch_size=args.batch_size)
    service = ClassificationService(settings)
    bar = tqdm(total=None, unit="img", file=sys.stderr, desc="evaluate", dynamic_ncols=True)

    def progress(p: Progress) -> None:
        bar.total = p.total
        bar.update(p.done - bar.n)

    try:
        report = service.evaluate(args.dataset, args.models or [DEFAULT_COMPARE_KEYS[0]], limit=args.limit,
                                  engine=args.engine, address=args.address, progress=progress, gallery_size=0,
                                  runtime=args.runtime)
    finally:
        bar.close()
    if args.out:
        report.write_csv(args.out)
    print(report.to_json() if args.json else format_report(report))
    return 0


def format_report(report: EvaluationReport) -> str:
    """The summary table, per-class accuracy, confusions, disagreement and what was skipped."""
    parts = [f"{report.images:,} images evaluated of {report.planned:,} ({report.engine} engine, batches of "
             f"{report.batch_size}, {report.wall_s:.1f} s)" + (" - CANCELLED" if report.cancelled else ""),
             "", report.summary_table().to_string(index=False), "",
             "Per-class top-1 accuracy (%):", report.per_class_table().to_string(index=False)]
    confusions = report.confusion_table()
    if len(confusions):
        parts += ["", "Most frequent confusions:", confusions.to_string(index=False)]
    if report.disagreements:
        parts += ["", "Disagreement (top-1):", report.disagreement_table().to_string(index=False)]
    for m in report.models:
        if m.unmatched_classes:
            parts += ["", f"{m.key}: classes matching none of its labels ({m.unmatched_images} images not "
                          f"scored): {', '.join(m.unmatched_classes)}"]
    if report.skipped:
        parts += ["", f"Skipped {len(report.skipped)} files:"]
        parts += [f"  {name}: {reason}" for name, reason in report.skipped[:50]]
        if len(report.skipped) > 50:
            parts.append(f"  ... and {len(report.skipped) - 50} more (see --json)")
    return "\n".join(parts)
