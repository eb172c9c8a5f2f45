import dataclasses

import pytest

from dashboard.errors import ModelRefusedError, UnknownModelError
from dashboard.models import registry


def test_builtin_models_cover_both_families():
    assert registry.list_keys("torchvision") == [
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
        "resnext50_32x4d", "resnext101_32x8d", "squeezenet1_0", "squeezenet1_1",
    ]
    assert registry.list_keys("transformers") == [
        "google/vit-base-patch16-224", "google/vit-large-patch16-224",
        "facebook/deit-tiny-patch16-224", "facebook/deit-small-patch16-224",
        "facebook/deit-base-patch16-224",
    ]
    assert {s.family for s in registry.list_models("torchvision")} == {"cnn"}
    assert {s.family for s in registry.list_models("transformers")} == {"transformer"}


def test_specs_are_frozen_and_lists_are_copies():
    spec = registry.get_spec("resnet18")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.key = "other"  # type: ignore[misc]
    models = registry.list_models()
    models.clear()
    assert registry.list_models()


def test_unknown_key_names_the_valid_ones():
    with pytest.raises(UnknownModelError) as err:
        registry.get_spec("resnet19")
    message = str(err.value)
    assert "resnet19" in message and "resnet18" in message and "google/vit-base-patch16-224" in message


def test_resolve_custom_hub_id_and_directory(tmp_path):
    spec = registry.resolve_spec("microsoft/resnet-50")
    assert (spec.backend, spec.source, spec.builtin) == ("transformers", "microsoft/resnet-50", False)
    local = registry.resolve_spec(str(tmp_path), origin="cli")  # directories: the command line only
    assert local.backend == "transformers" and local.weights == "local"


def test_custom_ids_can_be_turned_off():
    with pytest.raises(ModelRefusedError, match="turned off"):
        registry.resolve_spec("microsoft/resnet-50", allow_custom=False)
    assert registry.resolve_spec("resnet18", allow_custom=False).key == "resnet18"


@pytest.mark.parametrize("text", ["", "   ", "not a model!", "../../etc/passwd", "a/b/c", "org--x/y"])
def test_garbage_ids_are_unknown(text):
    with pytest.raises(UnknownModelError):
        registry.resolve_spec(text)
