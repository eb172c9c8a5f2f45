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
import inspect
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


class InputsVersion:
    """Per session and tab: the inputs its outputs were last cleared for, how many times that
    happened, and the inputs it last ran on.

    - A run that started before the latest clear drops its answer (it belongs to older inputs):
      without this, a slow run for the previous model choice could land after the clear.
    - A change event whose inputs are those already seen does nothing. Gradio fires an image's
      change several times for one new upload; clearing each time would clear the Labels, whose
      own change events come back around, and the page would loop.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.seen: dict[str, str] = {}
        self.ran: dict[str, str] = {}

    @staticmethod
    def _signature(values: Sequence[object]) -> str:
        return repr(values)

    def bump(self, tab: str, values: Sequence[object]) -> None:
        self.counts[tab] = self.counts.get(tab, 0) + 1
        self.seen[tab] = self._signature(values)

    def is_new(self, tab: str, values: Sequence[object]) -> bool:
        return self.seen.get(tab) != self._signature(values)

    def claim_run(self, tab: str, values: Sequence[object]) -> bool:
        """True once per inputs: the tab has not run on ``values`` yet (and they are the latest)."""
        signature = self._signature(values)
        if self.ran.get(tab) == signature or self.seen.get(tab, signature) != signature:
            return False
        self.ran[tab] = signature
        return True

    def mark_ran(self, tab: str, values: Sequence[object]) -> None:
        self.ran[tab] = self._signature(values)

    def get(self, tab: str) -> int:
        return self.counts.get(tab, 0)


def _cleared(tab: str, clear: Callable, version: InputsVersion, *values: object):
    """A button's clear: always (the button then runs on these inputs)."""
    version.bump(tab, values)
    version.mark_ran(tab, values)
    return clear(*values)


def _current_only(tab: str, run: Callable, version: InputsVersion, *values: object, **kwargs: object):
    started = version.get(tab)
    result = run(*values, **kwargs)
    return result if version.get(tab) == started else gr.skip()


def _endpoint(tab: str, run: Callable) -> Callable:
    """``run`` behind _current_only, with run's own signature (after the version state) so that
    gradio still names the API parameters after it and passes its gr.Progress."""

    @functools.wraps(run)
    def endpoint(inputs_version: InputsVersion, *values: object, **kwargs: object):
        return _current_only(tab, run, inputs_version, *values, **kwargs)

    signature = inspect.signature(run)
    version = inspect.Parameter("inputs_version", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    endpoint.__signature__ = signature.replace(parameters=[version, *signature.parameters.values()])  # type: ignore[attr-defined]
    return endpoint


@dataclass
class AutoRun:
    """The page's shared image, top-k and auto-run checkbox, and which tab is shown."""

    image: gr.Image
    top_k: Component
    enabled: gr.Checkbox
    current: gr.Textbox
    version: gr.State = field(default_factory=lambda: gr.State(InputsVersion()))  # copied per session
    _tabs: dict[str, TabRun] = field(default_factory=dict)

    def wire_button(self, button: gr.Button, *, check: Callable, clear: Callable, run: Callable,
                    inputs: Sequence[Component], outputs: Sequence[Component], api_name: str,
                    tab: str) -> None:
        """check (a toast when refused, nothing cleared) -> clear -> run (the API endpoint).

        The API calls ``run`` directly, so ``run`` checks everything again on the server."""
        inputs, outputs = list(inputs), list(outputs)
        (button.click(check, inputs, None, api_visibility="private", concurrency_limit=None, show_progress="hidden")
         .success(functools.partial(_cleared, tab, clear), [self.version, *inputs], outputs,
                  api_visibility="private", queue=False, show_progress="hidden")
         .success(_endpoint(tab, run), [self.version, *inputs],
                  outputs, api_name=api_name, concurrency_id="models"))

    def wire_tab(self, tab_id: str, *, run: Callable, clear: Callable, inputs: Sequence[Component],
                 outputs: Sequence[Component], triggers: Sequence[Component] = (),
                 ready: Callable[..., bool] = _always_ready, top_k: bool = True) -> None:
        """Rerun ``tab_id`` (when shown) or clear it whenever the image, one of ``triggers`` or
        (with ``top_k``) the shared top-k changes."""
        entry = TabRun(run, clear, list(inputs), list(outputs), ready)
        self._tabs[tab_id] = entry
        # The image's own events, not its change: gradio fires change again whenever an event that
        # reads the image completes, and those events are these ones (a loop of no-op requests).
        changed = [*new_image_triggers(self.image), *(c.change for c in triggers)]
        changed += [self.top_k.change] if top_k else []
        gate = dict(api_visibility="private", queue=False, show_progress="hidden")
        run_step = dict(fn=functools.partial(_auto_run, tab_id, entry.run), inputs=[self.version, *entry.inputs],
                        outputs=entry.outputs, api_visibility="private", trigger_mode="always_last",
                        concurrency_id="models", show_progress="minimal")
        is_new = functools.partial(_if_new, tab_id)
        # gate (new inputs?) -> clear at once -> gate (the tab shown, auto-run on?) -> run
        for chain in (gr.on(changed, is_new, [self.version, *entry.inputs], None, **gate),
                      example_loaded(self.image).then(is_new, [self.version, *entry.inputs], None, **gate)):
            (chain.success(entry.clear, entry.inputs, entry.outputs, **gate)
             .success(functools.partial(_to_run, tab_id, entry), [self.version, self.enabled, self.current,
                                                                  *entry.inputs], None, **gate)
             .success(**run_step))

    def wire_selection(self, tab: gr.Tab, tab_id: str) -> None:
        """Showing a tab makes it current and, with auto-run on, runs it on the current image."""
        tab.select(functools.partial(_constant, tab_id), None, self.current, api_visibility="private",
                   queue=False, show_progress="hidden")
        entry = self._tabs.get(tab_id)
        if entry is not None:
            (tab.select(functools.partial(_to_run_on_selection, tab_id, entry),
                        [self.version, self.enabled, *entry.inputs], None, api_visibility="private", queue=False,
                        show_progress="hidden")
             .success(functools.partial(_auto_run, tab_id, entry.run), [self.version, *entry.inputs],
                      entry.outputs, api_visibility="private", trigger_mode="always_last",
                      concurrency_id="models", show_progress="minimal"))


class _NothingToDo(gr.Error):
    """Stops an auto-run chain quietly: its inputs are not new, or the tab is not to run. A gate
    with no outputs rather than a gr.skip(): gradio resets a skipped output's value in the
    session's record, and share links are made from that record."""

    def __init__(self) -> None:
        super().__init__("nothing to do", visible=False, print_exception=False)


def _if_new(tab: str, version: InputsVersion, *values: object) -> None:
    """An input's change: go on (and remember the inputs) only when they really are new."""
    if not version.is_new(tab, values):
        raise _NothingToDo()
    version.bump(tab, values)


def _to_run(tab_id: str, entry: TabRun, version: InputsVersion, enabled: bool, current: str,
            *values: object) -> None:
    """After the clear: go on when auto-run is on and this tab is the one shown."""
    if not (enabled and current == tab_id and values[0] is not None and entry.ready(*values)
            and version.claim_run(tab_id, values)):
        raise _NothingToDo()


def _to_run_on_selection(tab_id: str, entry: TabRun, version: InputsVersion, enabled: bool,
                         *values: object) -> None:
    """A tab shown: run it, unless auto-run is off, it is not ready, or it already shows its
    answer for these inputs."""
    if not (enabled and values[0] is not None and entry.ready(*values) and version.claim_run(tab_id, values)):
        raise _NothingToDo()


def _auto_run(tab_id: str, run: Callable, version: InputsVersion, *values: object):
    try:
        return _current_only(tab_id, run, version, *values)
    except gr.Error as exc:
        # an unreadable upload is already flagged by the upload check: no second toast
        if isinstance(exc.__context__, ImageInputError):
            raise _NothingToDo() from None
        raise


def new_image_triggers(image: gr.Image) -> list:
    """The events of a new image chosen by the visitor: upload (file, paste, webcam), input, clear.
    Not ``change``: gradio fires it again when an event that reads the image completes, so a
    listener on it that reads the image (or clears an output such an event just filled) loops or
    wipes fresh results. An example is put in the image by another event: see example_loaded."""
    return [image.upload, image.input, image.clear]


def example_loaded(image: gr.Image):
    """The event that puts a clicked example into ``image`` (set by the app as
    ``image.example_loaded``, gr.Examples' load_input_event); chain listeners with ``.then``."""
    return image.example_loaded


def on_new_image(image: gr.Image, fn: Callable, outputs: Sequence[Component]) -> None:
    """``fn()`` -> ``outputs`` (a clear) whenever the visitor picks a new image, example included."""
    options = dict(fn=fn, inputs=None, outputs=list(outputs), api_visibility="private", queue=False,
                   show_progress="hidden")
    gr.on(new_image_triggers(image), **options)
    example_loaded(image).then(**options)


def current_tab_state(default: str) -> gr.Textbox:
    """Which tab the visitor is looking at (per session). A hidden field rather than gr.State, so
    that a share link (which holds component values, never State) reopens with it."""
    return gr.Textbox(value=default, visible=False, max_length=20, elem_id="current-tab")
