"""The web app's page without a browser (v2m.app.page) and `v2m app`'s start-up checks: the models
offered, the controls the page sets, one-line errors, and a neural model made selectable by its
checkpoint (in test_diffv2m_generate.py, beside its tiny model). The browser test (test_app_browser.py) drives the page itself."""

from __future__ import annotations

import json
import socket

import pytest

from v2m.app.page import AUTO, EVERY_SHOT, NONE, Studio, _controls, _one_line, _video_features, build, launch
from v2m.cli import main
from v2m.errors import MediaError, V2MError


def test_the_page_offers_the_composer_and_says_why_not_the_neural_models(tmp_path):
    studio = Studio(root=str(tmp_path))
    assert studio.models == ["composer"]
    page = build(studio)
    text = json.dumps(page.config, default=str)
    assert "Only the offline composer is offered" in text and "--checkpoint-diffv2m" in text
    assert "acoustic" in text and "F# minor" in text  # the styles and the 24 keys are choices
    with pytest.raises(V2MError, match="not offered here; start v2m app with --checkpoint-stad"):
        studio.generator("stad")


def test_the_controls_the_page_sets():
    controls, ignored = _controls("composer", "D minor", 96, "pitch", 2.0, 1, "move", 0.5)
    assert controls.key == "D minor" and controls.tempo == 96.0 and ignored == []
    assert controls.music_weight("pitch") == 2.0 and controls.video_weight("move", 1) == 0.5
    assert controls.video_weight("move", 0) == 1.0  # the control is on the shot picked only
    every, _ = _controls("composer", AUTO, 0, NONE, 1.0, EVERY_SHOT, "color", 2.0)
    assert every.key is None and every.tempo is None and every.music == ()
    assert every.video_weight("color", 0) == every.video_weight("color", 5) == 2.0
    _, ignored = _controls("diffv2m", "D minor", 0, "pitch", 2.0, EVERY_SHOT, NONE, 1.0)
    assert ignored == ["diffv2m does not use the music feature; ignored", "diffv2m does not use the key; ignored"]
    with pytest.raises(ValueError, match="tempo must be between 20 and 300"):
        _controls("composer", AUTO, 500, NONE, 1, EVERY_SHOT, NONE, 1)
    assert _video_features("composer") == [NONE, "move", "color", "semantic", "all"]
    assert _video_features("stad")[-3:] == ["area", "position", "all"] and _video_features("diffv2m") == [NONE]


def test_errors_are_one_line_naming_the_upload():
    names = {"/tmp/gradio/3f2a/clip.mp4": "clip.mp4"}
    assert _one_line(MediaError("has no video stream", "/tmp/gradio/3f2a/clip.mp4"), names) == \
        "v2m: error: clip.mp4: has no video stream"
    assert _one_line(V2MError("cannot write", "/x/y/out.mp4"), names) == "v2m: error: out.mp4: cannot write"
    line = _one_line(RuntimeError("boom\nsecond line"), names)
    assert line.startswith("v2m: error: unexpected failure (RuntimeError: boom)") and "\n" not in line


def test_bad_model_options_are_refused_at_start(tmp_path):
    with pytest.raises(V2MError, match="unknown neural model 'musicgen'"):
        Studio({"musicgen": {}}, root=str(tmp_path))
    with pytest.raises(V2MError, match="--model diffv2m does not take --sam"):
        Studio({"diffv2m": {"checkpoint": "x", "sam": "y"}}, root=str(tmp_path))


@pytest.mark.parametrize("config, expected", [
    ("{not json", "is not valid JSON"),
    ('["diffv2m"]', "must be a JSON object of model options"),
    ('{"diffv2m": {"steps": 0}}', "--steps must be a whole number of at least 1"),
])
def test_app_config_errors_are_one_line(tmp_path, capsys, config, expected):
    path = tmp_path / "models.json"
    path.write_text(config)
    assert main(["app", "--config", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("v2m: error: ") and expected in err and "\n" not in err


def test_app_limits_and_port_are_checked(capsys):
    assert main(["app", "--max-seconds", "0"]) == 1
    assert "max seconds must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["app", "--port", "70000"])
    assert "must be between 1 and 65535" in capsys.readouterr().err


def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(V2MError, match=f"cannot listen on 127.0.0.1:{port}.*choose another --port"):
            launch(Studio(root=str(tmp_path)), port=port)
