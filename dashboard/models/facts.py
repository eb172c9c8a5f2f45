"""Reference facts of the built-in models: parameters, FLOPs, weight-file size and the
ImageNet-1k top-1/top-5 accuracy their authors report.

These are figures *quoted from sources*, never measured here (the test caches hold random
weights, which say nothing about accuracy). torchvision models: their weights' own
``weights.meta`` (``num_params``, ``_ops``, ``_file_size``, ``_metrics``), read from the installed
torchvision. Transformers presets: the table below, each figure with its source; what no source
gives for that exact checkpoint is ``None`` and shown as "unknown".
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from dashboard.models.registry import get_spec, list_keys

UNKNOWN = "unknown"
VIT_PAPER = ("Dosovitskiy et al., An Image is Worth 16x16 Words (ICLR 2021), Table 1 "
             "(https://arxiv.org/abs/2010.11929)")
DEIT_CARD = ("the {repo} model card, table 'Evaluation results' (from the DeiT repository, "
             "https://github.com/facebookresearch/deit); Touvron et al., Training data-efficient image "
             "transformers (ICML 2021, https://arxiv.org/abs/2012.12877), Table 1")
VIT_ACCURACY_UNKNOWN = ("top-1/top-5 unknown: the google/{name} model card refers to Tables 2 and 5 of the "
                        "ViT paper, which report fine-tuning at 384x384, not this 224x224 checkpoint")


@dataclass(frozen=True)
class ModelFacts:
    """Reference figures of one model; ``None`` means no source gives it (shown as "unknown")."""

    key: str
    display_name: str
    params: int | None  # as the source states it (a paper's "86M" is 86_000_000)
    gflops: float | None  # per 224x224 image, as the source counts them
    file_mb: float | None  # the weight file, MB (torchvision: 2**20 bytes, as weights.meta gives it)
    top1: float | None  # ImageNet-1k validation accuracy, %
    top5: float | None
    source: str

    @property
    def params_text(self) -> str:
        if self.params is None:
            return UNKNOWN
        if self.params % 1_000_000 == 0:  # a source's rounded "86M": no invented decimal
            return f"{self.params // 1_000_000}M"
        return f"{self.params / 1e6:.1f}M"


@dataclass(frozen=True)
class _Quoted:
    params: int | None
    gflops: float | None
    top1: float | None
    top5: float | None
    source: str
    flops_from_torchvision: str | None = None  # same architecture: read that entry's weights.meta


# Transformers presets. ViT-B/16 and DeiT-B share one architecture (DeiT paper, Table 1) with
# torchvision's vit_b_16, ViT-L/16 with vit_l_16: their FLOPs are read from those weights.meta.
_QUOTED: dict[str, _Quoted] = {
    "google/vit-base-patch16-224": _Quoted(
        86_000_000, None, None, None,
        f"parameters: {VIT_PAPER} (ViT-Base); GFLOPs: torchvision vit_b_16 weights.meta, same architecture; "
        + VIT_ACCURACY_UNKNOWN.format(name="vit-base-patch16-224"), flops_from_torchvision="vit_b_16"),
    "google/vit-large-patch16-224": _Quoted(
        307_000_000, None, None, None,
        f"parameters: {VIT_PAPER} (ViT-Large); GFLOPs: torchvision vit_l_16 weights.meta, same architecture; "
        + VIT_ACCURACY_UNKNOWN.format(name="vit-large-patch16-224"), flops_from_torchvision="vit_l_16"),
    "facebook/deit-tiny-patch16-224": _Quoted(
        5_000_000, None, 72.2, 91.1,
        "parameters, top-1/top-5: " + DEIT_CARD.format(repo="facebook/deit-tiny-patch16-224")
        + "; GFLOPs: unknown (not given by these sources)"),
    "facebook/deit-small-patch16-224": _Quoted(
        22_000_000, 4.6, 79.9, 95.0,
        "parameters, top-1/top-5: " + DEIT_CARD.format(repo="facebook/deit-small-patch16-224")
        + " (the paper's Table 1 gives 79.8 top-1); GFLOPs: 4.6 GMACs, timm's deit_small_patch16_224.fb_in1k "
        "model card"),
    "facebook/deit-base-patch16-224": _Quoted(
        86_000_000, None, 81.8, 95.6,
        "parameters, top-1/top-5: " + DEIT_CARD.format(repo="facebook/deit-base-patch16-224")
        + "; GFLOPs: torchvision vit_b_16 weights.meta, same architecture", flops_from_torchvision="vit_b_16"),
}


def is_known(key: str) -> bool:
    """Whether reference facts exist for ``key`` (the built-in models)."""
    return key in list_keys()


@functools.lru_cache(maxsize=None)
def _torchvision_meta(builder: str) -> tuple[str, dict]:
    import torchvision.models as tvm

    weights = tvm.get_model_weights(builder).DEFAULT
    return f"{type(weights).__name__}.{weights.name}", dict(weights.meta)


def _hub_file_mb(repo_id: str) -> float | None:
    """The size of the model's weight file in this machine's Hub cache, when it is there."""
    from huggingface_hub import try_to_load_from_cache

    for name in ("model.safetensors", "pytorch_model.bin"):
        path = try_to_load_from_cache(repo_id, name)
        if isinstance(path, str) and os.path.isfile(path):
            return os.path.getsize(path) / 2**20
    return None


def model_facts(key: str) -> ModelFacts:
    """The reference facts of a built-in model (raises UnknownModelError for other keys)."""
    spec = get_spec(key)
    if spec.backend == "torchvision":
        weights_id, meta = _torchvision_meta(spec.source)
        metrics = meta.get("_metrics", {}).get("ImageNet-1K", {})
        return ModelFacts(key, spec.display_name, meta.get("num_params"), meta.get("_ops"),
                          meta.get("_file_size"), metrics.get("acc@1"), metrics.get("acc@5"),
                          f"torchvision {weights_id} weights.meta (recipe: {meta.get('recipe', UNKNOWN)})")
    quoted = _QUOTED[key]
    gflops = quoted.gflops
    if quoted.flops_from_torchvision:
        gflops = _torchvision_meta(quoted.flops_from_torchvision)[1].get("_ops")
    file_mb = _hub_file_mb(spec.source)
    source = quoted.source + ("; file size: the file in this server's Hub cache" if file_mb is not None
                              else "; file size: unknown (not in this server's Hub cache)")
    return ModelFacts(key, spec.display_name, quoted.params, gflops, file_mb, quoted.top1, quoted.top5, source)


def _num(value: float | None, digits: int, unit: str = "") -> str:
    return UNKNOWN if value is None else f"{value:,.{digits}f}{unit}"


def facts_line(key: str) -> str:
    """One Markdown line for a model card: the reference figures, or why there are none."""
    if not is_known(key):
        return "Reference figures: unknown (not a built-in model)."
    f = model_facts(key)
    return (f"Reference figures (quoted, not measured here): {f.params_text} parameters · "
            f"{_num(f.gflops, 2)} GFLOPs · weight file {_num(f.file_mb, 1, ' MB')} · ImageNet-1k top-1 "
            f"{_num(f.top1, 1, ' %')}, top-5 {_num(f.top5, 1, ' %')} · source: {f.source}")


FACTS_COLUMNS = ("model", "parameters", "GFLOPs", "weight file MB", "top-1 %", "top-5 %", "source")


def facts_table(keys: list[str]):  # -> pandas.DataFrame
    """One row per model (built-in or not: unknown figures say "unknown")."""
    import pandas as pd

    rows = []
    for key in keys:
        if not is_known(key):
            rows.append((key, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, "not a built-in model"))
            continue
        f = model_facts(key)
        rows.append((f.display_name, f.params_text, _num(f.gflops, 2), _num(f.file_mb, 1),
                     _num(f.top1, 1), _num(f.top5, 1), f.source))
    return pd.DataFrame(rows, columns=list(FACTS_COLUMNS))


SCATTER_COLUMNS = ("model", "latency ms", "top-1 %")


def accuracy_latency(latency_ms: dict[str, float]):  # -> pandas.DataFrame
    """Reference top-1 against the latency measured on this server, for the models that have
    both (``latency_ms``: key -> ms). Models of unknown accuracy are left out."""
    import pandas as pd

    rows = [(model_facts(k).display_name, round(ms, 1), model_facts(k).top1)
            for k, ms in latency_ms.items() if is_known(k) and model_facts(k).top1 is not None]
    return pd.DataFrame(rows, columns=list(SCATTER_COLUMNS))
