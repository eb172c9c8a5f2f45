"""How a tab's results follow its inputs (issue 9, items 2, 3 and 6).

- The tab's button: check -> clear -> run. A refusal (no image, a wrong number of models) is a
  toast and clears nothing; a run that is allowed first clears the outputs, so an error or a
  slow answer never sits under the previous input's results.
- Auto-run: a new image, a tab's model or the shared top-k reruns the *current* tab on the
  current image (a top-k change is answered from the result cache, no forward pass); every
  other tab, or every tab when auto-run is off, clears what no longer belongs to its inputs.
  Switching to a tab runs it on the current image. Nothing runs at page load.

Wiring only: the checks and runs are the tab's own callbacks (which call the handlers).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import gradio as gr

from dashboard.errors import ImageInputError

Component = gr.components.Component


def _always_ready(*values: object) -> bool:
    return True


def _constant(value: str) -> str:
    return value


@dataclass
class TabRun:
    """One tab's main action, as auto-run calls it."""

    run: Callable  # (*inputs) -> outputs; may raise gr.Error
    clear: Callable  # (*inputs) -> cleared outputs
    inputs: list[Component]  # the image first
    outputs: list[Component]
    ready: Callable[..., bool]  # (*inputs) -> whether auto-run should run (e.g. 2-4 models ticked)


@dataclass
class AutoRun:
    """The page's shared image, top-k and auto-run checkbox, and which tab is shown."""

    image: Component
    top_k: Component
    enabled: gr.Checkbox
    current: gr.State
    _tabs: dict[str, TabRun] = field(default_factory=dict)

    def wire_button(self, button: gr.Button, *, check: Callable, clear: Callable, run: Callable,
                    inputs: Sequence[Component], outputs: Sequence[Component], api_name: str) -> None:
        """check (a toast when refused, nothing cleared) -> clear -> run (the API endpoint).

        The API calls ``run`` directly, so ``run`` checks everything again on the server."""
        inputs, outputs = list(inputs), list(outputs)
        (button.click(check, inputs, None, api_visibility="private", queue=False, show_progress="hidden")
         .success(clear, inputs, outputs, api_visibility="private", queue=False, show_progress="hidden")
         .success(run, inputs, outputs, api_name=api_name, concurrency_id="models"))

    def wire_tab(self, tab_id: str, *, run: Callable, clear: Callable, inputs: Sequence[Component],
                 outputs: Sequence[Component], triggers: Sequence[Component] = (),
                 ready: Callable[..., bool] = _always_ready, top_k: bool = True) -> None:
        """Rerun ``tab_id`` (when shown) or clear it whenever the image, one of ``triggers`` or
        (with ``top_k``) the shared top-k changes."""
        entry = TabRun(run, clear, list(inputs), list(outputs), ready)
        self._tabs[tab_id] = entry
        changed = [self.image, *triggers] + ([self.top_k] if top_k else [])
        gr.on([c.change for c in changed], functools.partial(_follow_inputs, tab_id, entry),
              [self.enabled, self.current, *entry.inputs], entry.outputs, api_visibility="private",
              trigger_mode="always_last", concurrency_id="models", show_progress="minimal")

    def wire_selection(self, tab: gr.Tab, tab_id: str) -> None:
        """Showing a tab makes it current and, with auto-run on, runs it on the current image."""
        tab.select(functools.partial(_constant, tab_id), None, self.current, api_visibility="private",
                   queue=False, show_progress="hidden")
        entry = self._tabs.get(tab_id)
        if entry is not None:
            tab.select(functools.partial(_run_on_selection, entry), [self.enabled, *entry.inputs], entry.outputs,
                       api_visibility="private", trigger_mode="always_last", concurrency_id="models",
                       show_progress="minimal")


def _follow_inputs(tab_id: str, entry: TabRun, enabled: bool, current: str, *values: object):
    if enabled and current == tab_id and values[0] is not None and entry.ready(*values):
        try:
            return entry.run(*values)
        except gr.Error as exc:
            # an unreadable upload is already flagged by the upload check: no second toast
            if isinstance(exc.__context__, ImageInputError):
                return entry.clear(*values)
            raise
    return entry.clear(*values)


def _run_on_selection(entry: TabRun, enabled: bool, *values: object):
    if enabled and values[0] is not None and entry.ready(*values):
        return entry.run(*values)
    return gr.skip()


def current_tab_state(default: str) -> gr.State:
    """Which tab the visitor is looking at (per session)."""
    return gr.State(default)
