"""The bookkeeping behind auto-run (dashboard/tabs/autorun.py): repeated change events do
nothing, each set of inputs runs once, and an answer whose inputs changed is dropped."""

from __future__ import annotations

import gradio as gr

import pytest

from dashboard.tabs.autorun import InputsVersion, _cleared, _current_only, _if_new, _NothingToDo


def _clear(*values):
    return ("cleared",)


def test_a_repeated_change_clears_once_and_runs_once():
    version = InputsVersion()
    inputs = ("cat.jpg", "resnet18", 3, "pytorch")
    _if_new("resnet", version, *inputs)  # new: the chain goes on to clear
    # gradio fires the image's change again for the same upload: the chain stops, quietly
    with pytest.raises(_NothingToDo) as stopped:
        _if_new("resnet", version, *inputs)
    assert stopped.value.visible is False
    assert version.claim_run("resnet", inputs) and not version.claim_run("resnet", inputs)
    # new inputs: cleared and runnable again; older inputs can no longer claim a run
    newer = ("cat.jpg", "resnet18", 5, "pytorch")
    _if_new("resnet", version, *newer)
    assert not version.claim_run("resnet", inputs) and version.claim_run("resnet", newer)
    # tabs are independent
    _if_new("vit", version, *inputs)


def test_an_answer_whose_inputs_changed_while_it_ran_is_dropped():
    version = InputsVersion()

    def slow_run(*values):
        _if_new("compare", version, "cat.jpg", ["resnet18", "squeezenet1_1"])  # meanwhile
        return ("answer",)

    _cleared("compare", _clear, version, "cat.jpg", ["resnet18"])
    assert _current_only("compare", slow_run, version) == gr.skip()
    assert _current_only("compare", lambda *v: ("answer",), version) == ("answer",)


def test_a_button_always_clears_and_counts_as_the_run():
    version = InputsVersion()
    inputs = ("cat.jpg", "resnet18", 3, "pytorch")
    _if_new("resnet", version, *inputs)
    assert _cleared("resnet", _clear, version, *inputs) == ("cleared",)  # the same inputs, asked again
    assert not version.claim_run("resnet", inputs)  # the button runs them: auto-run does not repeat it
