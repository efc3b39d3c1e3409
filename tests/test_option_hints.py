"""Every error and warning a command prints suggests only options that command has.

Each case makes a command fail the way users make it fail (weights that cannot be loaded,
missing checkpoints, empty data) and checks every ``--option`` in what it printed against the
command's own parser. Options of another command are fine when the text names that command
(inside backticks: `v2m prepare --codec`)."""

from __future__ import annotations

import re

import pytest

from v2m.cli import build_parser, main
from synthetic import write_video

MISSING = "/nonexistent/v2m-weights"  # a path that is no directory: the loaders refuse at once


def _options(command: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {s for action in sub._actions for s in action.option_strings}


def _named_options(text: str) -> set[str]:
    text = re.sub(r"`[^`]*`", "", text)  # another command's options, named with that command
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hints")
    return write_video(folder / "clip.mp4", duration=2.0, fps=10, size=(64, 48), cut_times=[1.0], audio=True).path


CASES = {
    "analyze, CLIP": ["analyze", "{clip}", "-o", "{out}", "--clip", MISSING],
    "analyze, SAM for --objects": ["analyze", "{clip}", "-o", "{out}", "--no-clip", "--objects", "--sam", MISSING],
    "generate, diffv2m checkpoint": ["generate", "{clip}", "-o", "{out}/o.mp4", "--model", "diffv2m",
                                     "--checkpoint", MISSING],
    "generate, diffv2m default weights (offline)": ["generate", "{clip}", "-o", "{out}/o.mp4", "--model", "diffv2m"],
    "generate, stad without checkpoint": ["generate", "{clip}", "-o", "{out}/o.mp4", "--model", "stad"],
    "prepare, CLIP": ["prepare", "{clip}", "-o", "{out}", "--clip", MISSING, "-q"],
    "prepare, codec": ["prepare", "{clip}", "-o", "{out}", "--no-clip", "--codec", MISSING, "-q"],
    "prepare, default codec (offline)": ["prepare", "{clip}", "-o", "{out}", "--no-clip", "-q",
                                         "--clip-seconds", "2", "--min-seconds", "1"],
    "prepare stad, SAM": ["prepare", "{clip}", "-o", "{out}", "--model", "stad", "--no-codec", "--sam", MISSING,
                          "-q"],
    "convert, codec": ["convert", "{out}/dataset_train.json", "-o", "{out}/imported", "--codec", MISSING],
    "train diffv2m, empty data": ["train", "diffv2m", "--data", "{out}", "-o", "{out}/run", "-q"],
    "train stad, empty data": ["train", "stad", "--data", "{out}", "-o", "{out}/run", "-q"],
    "evaluate, VGGish": ["evaluate", "--generated", "{dir}", "--reference", "{dir}", "-o", "{out}", "--vggish",
                         MISSING, "--panns", "off", "--clap", "off", "--imagebind", "off"],
}


@pytest.mark.parametrize("case", CASES)
def test_messages_name_only_the_commands_own_options(case, clip, tmp_path, capsys):
    import os

    (tmp_path / "dataset_train.json").write_text('{"dataset_type": "audio_dir", "datasets": []}')
    argv = [a.format(clip=clip, out=tmp_path, dir=os.path.dirname(clip)) for a in CASES[case]]
    try:
        main(argv)
    except SystemExit:
        pass
    err = capsys.readouterr().err
    assert "v2m: " in err, err  # each case prints an error or a warning
    named = _named_options(err)
    assert named <= _options(argv[0]), (case, sorted(named - _options(argv[0])), err)


@pytest.mark.parametrize("model, argv, refused", [
    ("composer", ["--sam", "x"], "--sam"), ("composer", ["--checkpoint", "x"], "--checkpoint"),
    ("composer", ["--sampler", "ddim", "--steps", "5"], "--sampler, --steps"), ("composer", ["--config", "c.json"], "--config"),
    ("diffv2m", ["--sam", "x"], "--sam"), ("diffv2m", ["--soundfont", "x.sf2"], "--soundfont"),
    ("stad", ["--sampler", "ddim"], "--sampler"), ("stad", ["--config", "c.json"], "--config"),
    ("stad", ["--soundfont", "x.sf2", "--steps", "3"], "--soundfont, --steps"),
])
def test_an_option_a_model_does_not_take_is_one_line(model, argv, refused, clip, tmp_path, capsys):
    code = main(["generate", clip, "-o", str(tmp_path / "o.mp4"), "--model", model, *argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("v2m: error")]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert f"--model {model} does not take {refused} (it takes" in lines[0]
    assert _named_options(err) <= _options("generate")
    assert list(tmp_path.iterdir()) == []
