import pytest

from dashboard.settings import Settings, resolve_settings


def test_defaults():
    s = resolve_settings(env={})
    assert s == Settings()
    assert (s.host, s.port, s.device, s.top_k) == ("127.0.0.1", 7860, "auto", 3)


def test_explicit_beats_environment_beats_default():
    env = {"DASHBOARD_PORT": "9000", "DASHBOARD_DEVICE": "cpu", "DASHBOARD_PRELOAD": "resnet18, google/vit-base-patch16-224"}
    s = resolve_settings(env=env, port=9100, device=None)
    assert s.port == 9100  # explicit
    assert s.device == "cpu"  # environment
    assert s.preload == ("resnet18", "google/vit-base-patch16-224")
    assert s.top_k == 3  # default


def test_spaces_variables_are_honoured():
    s = resolve_settings(env={"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7861"})
    assert (s.host, s.port) == ("0.0.0.0", 7861)


def test_booleans_parse_and_reject_nonsense():
    assert resolve_settings(env={"DASHBOARD_ALLOW_CUSTOM_MODELS": "off"}).allow_custom_models is False
    with pytest.raises(ValueError, match="DASHBOARD_SHARE"):
        resolve_settings(env={"DASHBOARD_SHARE": "maybe"})


@pytest.mark.parametrize("env", [{"DASHBOARD_PORT": "seventy"}, {"DASHBOARD_TOP_K": "0"}, {"DASHBOARD_WORKERS": "0"}])
def test_invalid_values_are_refused(env):
    with pytest.raises(ValueError):
        resolve_settings(env=env)


def test_unknown_explicit_setting_is_an_error():
    with pytest.raises(TypeError):
        resolve_settings(env={}, colour="blue")
