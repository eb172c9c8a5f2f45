"""The printed report: one markdown table from a declared schema, then the targets as ratios."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

from benchmarks.pipelines import RESNET, VIT

COLUMNS = ("measurement", "preprocess", "forward", "postprocess", "other", "total", "notes")
SHORT = {RESNET: "resnet18", VIT: "vit-base-patch16-224"}


@dataclass(frozen=True)
class Row:
    """One table row; stage columns in ms, ``total`` in the unit its measurement names."""

    measurement: str
    preprocess: float | None = None
    forward: float | None = None
    postprocess: float | None = None
    other: float | None = None
    total: float | None = None
    notes: str = ""
    digits: int = 1


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    ratio: float | None
    limit: str
    met: bool | None  # None: informational, or not measurable here

    def line(self) -> str:
        verdict = "n/a" if self.met is None else ("met" if self.met else "**NOT MET**")
        ratio = "n/a" if self.ratio is None else f"{self.ratio:.2f}"
        return f"- {self.name}: {self.measured} -> ratio {ratio} (target {self.limit}): {verdict}"


def markdown(rows: list[Row]) -> str:
    def fmt(value: float | None, digits: int) -> str:
        return "" if value is None else f"{value:,.{digits}f}"

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for row in rows:
        cells = [row.measurement, *(fmt(getattr(row, c), row.digits) for c in COLUMNS[1:6]), row.notes]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _mb(n: float | None) -> float | None:
    return None if n is None else n / 2**20


def _num(text) -> float | None:
    """'1234 ms' -> 1234.0 (the latency table's load column)."""
    try:
        return float(str(text).split()[0])
    except (ValueError, IndexError):
        return None


# --- rows --------------------------------------------------------------------------------------------
def _pipeline_rows(stages: dict) -> list[Row]:
    rows = []
    for key in (RESNET, VIT):
        for s in stages["models"][key].values():
            what = f"[1] {SHORT[key]} · {s['name']} (ms)"
            if "total" not in s:
                rows.append(Row(what, notes=s["note"]))
                continue
            spread = f"median of {s['runs']}, total p25-p75 {s['p25']:.1f}-{s['p75']:.1f}"
            rows.append(Row(what, s["pre"], s["fwd"], s["post"], s["other"], s["total"],
                            "; ".join(x for x in (s["note"], spread) if x)))
    return rows


def _startup_rows(r: dict) -> list[Row]:
    cs, stages, api, mem = r["startup"], r["stages"], r["api"], r["memory"]
    torch_at_start = "yes" if cs["torch_loaded_at_start"] else "no"
    rows = [
        Row('[2] cold start: `python -c "import gradio"` (s)', total=cs["import_gradio_s"], digits=2,
            notes=f"median of {len(cs['import_samples'])}"),
        Row("[2] cold start: `python -m dashboard --port P` to first HTTP 200 on / (s)",
            total=cs["first_200_s"], digits=2,
            notes=f"median of {len(cs['start_samples'])}; torch loaded at start-up: {torch_at_start}"),
    ]
    for key in (RESNET, VIT):
        rows.append(Row(f"[2] first use {SHORT[key]}, in-process service (LoadInfo.load_ms, ms)",
                        total=stages["load"][key]["load_ms"], digits=0,
                        notes="torch already imported; includes the warm-up forward"))
    rows.append(Row(f"[2] first use {SHORT[RESNET]}, in the server (load column of the first API call, ms)",
                    total=_num(api["first_load"]), digits=0,
                    notes=f"fresh process: includes importing torch and torchvision; first call "
                          f"{api['first_call_ms']:.0f} ms"))
    rows.append(Row(f"[2] first use {SHORT[VIT]}, in the server (load column of the first API call, ms)",
                    total=_num(mem["vit_first_load"]), digits=0,
                    notes=f"includes importing transformers; first call {mem['vit_first_call_ms']:.0f} ms"))
    return rows


def _latency_rows(r: dict) -> list[Row]:
    api, raw, mem = r["api"], r["raw"], r["memory"]
    st = api["server_stages_ms"]
    rows = [
        Row("[3] API /classify_resnet, warm, distinct images (gradio_client, ms)", st["preprocess"],
            st["forward"], st["postprocess"], api["classify_ms"] - st["total"], api["classify_ms"],
            f"stages as the server reports them; other = upload + queue + decode + handler + framework + "
            f"client polling; median of {len(api['samples']['classify'])}"),
        Row("[3] API no-op /noop: RawImage in, gr.Label out (framework floor, gradio_client, ms)",
            total=api["noop_ms"],
            notes="tiny gr.Blocks in benchmarks/noop_app.py, same launch/queue settings"),
        Row("[3] API no-op /noop_same_io: inputs/outputs of /classify_resnet (gradio_client, ms)",
            total=api["noop_same_io_ms"], notes="Label + Dataframe + Markdown, constant values"),
    ]
    st = raw["server_stages_ms"]
    rows += [
        Row("[3] plain HTTP /gradio_api/call/classify_resnet, warm, distinct images (ms)", st["preprocess"],
            st["forward"], st["postprocess"], raw["classify_ms"] - st["total"], raw["classify_ms"],
            f"file uploaded first ({raw['upload_ms']:.0f} ms, not included), then call + SSE stream read as "
            f"it arrives; median of {len(raw['samples']['classify'])}"),
        Row("[3] plain HTTP no-op /noop (framework floor, ms)", total=raw["noop_ms"]),
        Row("[3] plain HTTP no-op /noop_same_io (ms)", total=raw["noop_same_io_ms"]),
        Row("[3] API /classify_vit, warm (gradio_client, ms)", forward=mem["vit_forward_ms"],
            total=mem["vit_classify_ms"], notes=f"median of {mem['vit_calls']} after the first use"),
    ]
    br = r.get("browser") or {}
    if not br.get("dashboard"):
        rows.append(Row("[3] click-to-label in headless Chromium", notes=br.get("error", "not run")))
        return rows
    d = br["dashboard"]
    rows += [
        Row("[3] browser click-to-label, dashboard #resnet-run -> #resnet-label (ms)",
            forward=d["forward_ms"], total=d["click_to_label_ms"],
            notes=f"performance.now() from the click to the Label's mutation; forward as the page's table "
                  f"shows it; upload + preview before the click {d['upload_ms']:.0f} ms; median of "
                  f"{len(d['samples'])}"),
        Row("[3] browser click-to-label, no-op #noop-run (framework floor, ms)",
            total=br["noop"]["click_to_label_ms"], notes=f"median of {len(br['noop']['samples'])}"),
        Row("[3] browser click-to-label, no-op with the same outputs #noop3-run (ms)",
            total=br["noop_same_io"]["click_to_label_ms"],
            notes=f"median of {len(br['noop_same_io']['samples'])}"),
    ]
    return rows


def _throughput_rows(r: dict) -> list[Row]:
    rows = []
    for tp in (r["throughput"], r["throughput_raw"]):
        rounds = f"{tp['rounds']} rounds, median"
        rows.append(Row(f"[4] throughput ({tp['kind']}), 1 client, sequential (req/s)",
                        total=tp["sequential_rps"], digits=2,
                        notes=f"{tp['requests']['sequential']} requests x {rounds}; server forward "
                              f"{tp['sequential_forward_ms']:.0f} ms"))
        rows.append(Row(f"[4] throughput ({tp['kind']}), {tp['clients']} concurrent clients (req/s)",
                        total=tp["concurrent_rps"], digits=2,
                        notes=f"{tp['requests']['concurrent']} requests x {rounds}; server forward per "
                              f"merged batch {tp['concurrent_forward_ms']:.0f} ms; client latency "
                              f"{tp['concurrent_latency_ms']:.0f} ms"))
    ct = r["core_throughput"]
    rows.append(Row("[4] (info) core alone: service.classify in 1 thread, sequential (req/s)",
                    total=ct["sequential_rps"], digits=2, notes="in-process, no HTTP"))
    rows.append(Row(f"[4] (info) core alone: {ct['clients']} threads (req/s)", total=ct["concurrent_rps"],
                    digits=2, notes=f"mean merged batch size {ct['mean_batch_size']:.1f}"))
    return rows


def _memory_rows(r: dict) -> list[Row]:
    rss, mem, weights = r["rss_mb"], r["memory"], r["stages"]["weight_bytes"]
    return [
        Row("[5] server RSS after start, no model (MB)", total=rss["idle"], digits=0),
        Row(f"[5] server RSS after first use of {SHORT[RESNET]} + the API runs (MB)",
            total=rss["after_first_resnet_and_api"], digits=0),
        Row("[5] server RSS after the throughput runs (batches of up to 8, MB)",
            total=rss["after_throughput"], digits=0),
        Row("[5] server peak RSS (VmHWM) with both defaults loaded (MB)", total=mem["peak_rss_mb"], digits=0,
            notes=f"RSS now {mem['rss_both_mb']:.0f} MB (psutil); peak over the whole run"),
        Row("[5] weight bytes of resnet18 + vit-base-patch16-224 (MB)", total=_mb(sum(weights.values())),
            digits=0, notes=" + ".join(f"{_mb(v):.0f}" for v in weights.values())),
    ]


def _repeat_rows(r: dict) -> list[Row]:
    rep = r["stages"]["repeat"]
    return [Row(f"[6] identical repeat, result cache on, core service.classify, {SHORT[key]} (ms)",
                total=rep[key]["repeat_ms"], digits=2,
                notes=f"answered from the cache: {rep[key]['all_repeated']}; cache size "
                      f"{rep['result_cache_size']}; median of {len(rep[key]['samples'])}")
            for key in (RESNET, VIT)]


def build_rows(r: dict) -> list[Row]:
    return [*_pipeline_rows(r["stages"]), *_startup_rows(r), *_latency_rows(r), *_throughput_rows(r),
            *_memory_rows(r), *_repeat_rows(r)]


# --- targets -----------------------------------------------------------------------------------------
def paired_ratio(a: dict, b: dict) -> float:
    """Median over rounds of a's total / b's total: each round ran both back to back, so the
    machine's drift (large on a shared VM) cancels out."""
    return statistics.median(x / y for x, y in zip(a["totals"], b["totals"]))


def _around_forward(s: dict) -> float | None:
    """Median per run of total minus forward: what a pipeline adds around the model."""
    if any(v is None for v in s.get("fwd_samples") or [None]):
        return None
    return statistics.median(t - f for t, f in zip(s["totals"], s["fwd_samples"]))


def _versus(name: str, a: dict, b: dict, limit: float) -> Target:
    ratio = paired_ratio(a, b)
    around_a, around_b = _around_forward(a), _around_forward(b)
    around = ("" if around_a is None or around_b is None
              else f"; outside the forward pass {around_a:.1f} vs {around_b:.1f} ms")
    return Target(name, f"{a['total']:.1f} ms vs {b['total']:.1f} ms (medians; ratio of medians "
                        f"{a['total'] / b['total']:.2f}{around})",
                  ratio, f"<= {limit:.2f}, median of paired ratios", ratio <= limit)


def _pipeline_targets(r: dict) -> list[Target]:
    m = r["stages"]["models"]
    mr, mv = m[RESNET], m[VIT]
    t = [
        _versus("resnet18: our total <= 1.05x torchvision reference (Classifier stages vs "
                "weights.transforms() + model, same decoded image)",
                mr["ours_classifier"], mr["torchvision_reference"], 1.05),
        _versus("vit-base: our total <= 1.05x the transformers reference (processor + model, the "
                "torchvision reference's counterpart)", mv["ours_classifier"], mv["hf_reference"], 1.05),
        _versus("vit-base: our total <= transformers pipeline (stages called one by one)",
                mv["ours_classifier"], mv["transformers_pipeline"], 1.0),
        _versus("vit-base: our total <= transformers pipeline (whole call pipe(img))",
                mv["ours_classifier"], mv["transformers_pipeline_call"], 1.0),
        Target("resnet18: our total <= transformers pipeline", "no transformers pipeline exists for "
               "torchvision weights", None, "<= 1.00", None),
    ]
    decode = mr["decode_pil"]["total"]
    for key, ref in ((RESNET, "torchvision_reference"), (VIT, "hf_reference")):  # decode on both sides
        svc, other = m[key]["ours_service"], m[key][ref]
        ratio = statistics.median(s / (decode + o) for s, o in zip(svc["totals"], other["totals"]))
        t.append(Target(f"(info) {SHORT[key]}: our service.classify(path) vs PIL decode + reference",
                        f"{svc['total']:.1f} ms vs {decode:.1f} + {other['total']:.1f} ms", ratio, "info",
                        None))
    return t


def _latency_targets(r: dict) -> list[Target]:
    cs = r["startup"]
    ratio = cs["first_200_s"] / cs["import_gradio_s"]
    t = [Target("page served within 1.3x `import gradio`",
                f"{cs['first_200_s']:.2f} s vs {cs['import_gradio_s']:.2f} s (medians)", ratio, "<= 1.30",
                ratio <= 1.3)]
    name = "resnet18 click-to-label <= forward + 40 ms (headless Chromium)"
    br = r.get("browser") or {}
    if br.get("dashboard"):
        d = br["dashboard"]
        fwd = d["forward_ms"] if d["forward_ms"] is not None else r["api"]["server_stages_ms"]["forward"]
        budget = fwd + 40
        t.append(Target(name, f"{d['click_to_label_ms']:.0f} ms vs {fwd:.0f} + 40 = {budget:.0f} ms (no-op "
                              f"floor {br['noop']['click_to_label_ms']:.0f} ms, with the same outputs "
                              f"{br['noop_same_io']['click_to_label_ms']:.0f} ms)",
                        d["click_to_label_ms"] / budget, "<= 1.00", d["click_to_label_ms"] <= budget))
    else:
        t.append(Target(name, "browser not run", None, "<= 1.00", None))
    for kind, api in (("gradio_client", r["api"]), ("plain HTTP", r["raw"])):
        budget = api["server_stages_ms"]["forward"] + 40
        t.append(Target(f"(info) resnet18 {kind} latency vs forward + 40 ms",
                        f"{api['classify_ms']:.0f} ms vs {budget:.0f} ms (no-op floor "
                        f"{api['noop_ms']:.0f} ms)",
                        api["classify_ms"] / budget, "info", None))
    return t


def _throughput_targets(r: dict) -> list[Target]:
    t = []
    for tp in (r["throughput"], r["throughput_raw"]):
        ratio = statistics.median(c / q for c, q in zip(tp["samples"]["concurrent_rps"],
                                                         tp["samples"]["sequential_rps"]))
        t.append(Target(f"{tp['clients']} concurrent clients >= 1.3x sequential throughput ({tp['kind']})",
                        f"{tp['concurrent_rps']:.2f} vs {tp['sequential_rps']:.2f} req/s (medians)", ratio,
                        ">= 1.30, median of per-round ratios", ratio >= 1.3))
    ct = r["core_throughput"]
    t.append(Target(f"(info) core alone: {ct['clients']} threads vs sequential",
                    f"{ct['concurrent_rps']:.2f} vs {ct['sequential_rps']:.2f} req/s",
                    ct["concurrent_rps"] / ct["sequential_rps"], "info", None))
    return t


def _cache_and_memory_targets(r: dict) -> list[Target]:
    rep = r["stages"]["repeat"]
    worst = max(rep[k]["repeat_ms"] for k in (RESNET, VIT))
    ok = worst <= 10 and all(rep[k]["all_repeated"] for k in (RESNET, VIT))
    weights = _mb(sum(r["stages"]["weight_bytes"].values()))
    budget, peak = weights + 600, r["memory"]["peak_rss_mb"]
    return [
        Target("identical repeat answered from the result cache <= 10 ms (core)",
               f"{worst:.2f} ms (the slower of the two models)", worst / 10, "<= 1.00", ok),
        Target("server RSS with both defaults <= weight bytes + 600 MB",
               f"peak {peak:.0f} MB vs {weights:.0f} + 600 = {budget:.0f} MB", peak / budget, "<= 1.00",
               peak <= budget),
    ]


def build_targets(r: dict) -> list[Target]:
    return [*_pipeline_targets(r), *_latency_targets(r), *_throughput_targets(r),
            *_cache_and_memory_targets(r)]


def as_json(rows: list[Row], targets: list[Target]) -> dict:
    return {"columns": list(COLUMNS), "rows": [asdict(r) for r in rows],
            "targets": [asdict(t) for t in targets]}
