"""The one place that resolves configuration: explicit value > environment > default."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "DASHBOARD_"
# Variables read besides DASHBOARD_<FIELD> (Spaces set these two).
ENV_ALIASES = {"host": ("GRADIO_SERVER_NAME",), "port": ("GRADIO_SERVER_PORT",)}
# Devices torch knows by these names; whether one is present is checked at start-up (service).
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,2})?|xpu(:\d{1,2})?)$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


@dataclass(frozen=True)
class Settings:
    """Everything the core and the app can be configured with. Frozen: share it freely."""

    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    device: str = "auto"  # "auto" picks CUDA when present, else CPU; or "cpu", "cuda", "cuda:1"
    preload: tuple[str, ...] = ()
    top_k: int = 3
    max_pixels: int = 40_000_000  # images declaring more pixels are refused before decoding
    max_file_size_mb: float = 20.0  # upload cap enforced by the server
    memory_budget_mb: int = 4096  # loaded models beyond this are evicted, least recently used first
    allow_custom_models: bool = True  # free-form Hub ids / local directories (turn off on public Spaces)
    max_model_params: int = 400_000_000  # larger free-form models are refused before download
    queue_max_size: int = 64  # requests waiting beyond this get "busy, try again"
    workers: int = 1  # forward passes at once; torch threads are split between them
    max_batch_size: int = 8  # simultaneous requests for one model merged into one forward pass
    result_cache_size: int = 256  # identical repeats (same bytes and model, any top-k) answered from memory
    explain_head_fusion: str = "mean"  # attention rollout: how a layer's heads are fused (mean, max, min)
    explain_discard_ratio: float = 0.9  # attention rollout: share of the weakest attention links dropped
    result_cache_mb: int = 64  # ... and the memory those cached results may hold at most
    local_model_dirs: tuple[str, ...] = ()  # checkpoint folders visitors may pick as local:<folder name>
    custom_model_slots: int = 1  # custom models checked/loaded at once; more are told "busy"
    background_preload: bool = True  # once the page is served, load the default models in the background
    auto_run: bool = True  # a new image, model or top-k reruns the current tab (a checkbox turns it off)
    max_sweep_steps: int = 24  # strengths in one robustness sweep (each model classifies them in one batch)
    perturb_max_side: int = 1024  # robustness works on the image scaled to at most this many pixels a side
    max_timing_runs: int = 50  # fair timing: timed runs per model at most (after one warm-up run)
    onnx_cache_dir: str = ""  # exported .onnx files; "" = $XDG_CACHE_HOME/dashboard/onnx (~/.cache/...)
    # Evaluation on labelled images (dashboard/evaluate): batches, and caps on an uploaded .zip
    eval_batch_size: int = 16  # images per forward pass
    eval_gallery_size: int = 24  # misclassified images shown as thumbnails
    eval_max_archive_mb: float = 200.0  # the .zip itself (uploads are also capped by max_file_size_mb)
    eval_max_entries: int = 10_000  # entries in a .zip
    eval_max_uncompressed_mb: float = 1024.0  # declared uncompressed total of a .zip
    eval_max_ratio: float = 100.0  # uncompressed / compressed, per entry and for the whole .zip


def _parse(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r}: expected true or false")
    if isinstance(default, tuple):
        return tuple(part for part in (p.strip() for p in raw.replace(",", " ").split()) if part)
    try:
        return type(default)(raw)
    except ValueError:
        raise ValueError(
            f"{ENV_PREFIX}{name.upper()}={raw!r}: expected a {type(default).__name__}"
        ) from None


def resolve_settings(env: Mapping[str, str] | None = None, **explicit: Any) -> Settings:
    """Build Settings from explicit values (None means "not given"), then the environment.

    Environment variables are ``DASHBOARD_<FIELD>`` (e.g. ``DASHBOARD_DEVICE=cpu``); host and
    port also honour ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``, which Spaces set.
    """
    env = os.environ if env is None else env
    defaults = Settings()
    unknown = set(explicit) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        default = getattr(defaults, f.name)
        value = explicit.get(f.name)
        if value is None:
            for var in (ENV_PREFIX + f.name.upper(), *ENV_ALIASES.get(f.name, ())):
                if env.get(var) not in (None, ""):
                    value = _parse(f.name, env[var], default)
                    break
        if value is None:
            continue
        if isinstance(default, tuple):
            value = tuple(value)
        values[f.name] = value
    if "allow_custom_models" not in values and env.get("SPACE_ID"):
        # On a Hugging Face Space free-form ids are off unless the operator turns them on.
        values["allow_custom_models"] = False
    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    checks = {
        "port": 0 <= s.port <= 65535,
        "top_k": 1 <= s.top_k <= 10,
        "max_pixels": s.max_pixels > 0,
        "max_file_size_mb": math.isfinite(s.max_file_size_mb) and 0 < s.max_file_size_mb <= 10_240,
        "device": bool(DEVICE_PATTERN.match(s.device)),
        "host": _valid_host(s.host),
        "memory_budget_mb": s.memory_budget_mb > 0,
        "max_model_params": s.max_model_params > 0,
        "queue_max_size": s.queue_max_size > 0,
        "workers": s.workers >= 1,
        "max_batch_size": s.max_batch_size >= 1,
        "result_cache_size": s.result_cache_size >= 0,
        "explain_head_fusion": s.explain_head_fusion in ("mean", "max", "min"),
        "explain_discard_ratio": 0.0 <= s.explain_discard_ratio < 1.0,
        "result_cache_mb": s.result_cache_mb >= 0,
        "custom_model_slots": s.custom_model_slots >= 1,
        "max_sweep_steps": 2 <= s.max_sweep_steps <= 256,
        "perturb_max_side": s.perturb_max_side >= 64,
        "max_timing_runs": 3 <= s.max_timing_runs <= 1000,
        "onnx_cache_dir": "\x00" not in s.onnx_cache_dir,
        "eval_batch_size": 1 <= s.eval_batch_size <= 1024,
        "eval_gallery_size": 0 <= s.eval_gallery_size <= 200,
        "eval_max_archive_mb": s.eval_max_archive_mb > 0,
        "eval_max_entries": s.eval_max_entries > 0,
        "eval_max_uncompressed_mb": s.eval_max_uncompressed_mb > 0,
        "eval_max_ratio": s.eval_max_ratio >= 1,
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise ValueError(f"invalid setting(s): {', '.join(f'{n}={getattr(s, n)!r}' for n in bad)}"
                         + (" (device: auto, cpu, cuda, cuda:N, mps or xpu)" if "device" in bad else ""))


def _valid_host(host: str) -> bool:
    """An IP address, or a host name; dotted numbers must be a real IPv4 address (999.1.1.1 is not)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    if re.fullmatch(r"[\d.]+", host):
        return False
    return bool(_HOSTNAME.match(host))
