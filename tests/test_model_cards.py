"""Each model's card: the options it takes (typed, validated), the controls it honours, and the
command line built from the cards (issue 14, item 1)."""

from __future__ import annotations

import re

import pytest

from v2m.controls import Controls
from v2m.errors import V2MError
from v2m.models import MODELS, card, get_generator
from v2m.models.cards import CONTROL_FLAGS, SAMPLER_NAMES, DiffV2MOptions, StadOptions


def _generate_flags() -> set[str]:
    from v2m.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {s for a in sub.choices["generate"]._actions for s in a.option_strings}


def test_every_option_of_every_card_is_a_generate_flag():
    flags = _generate_flags()
    for model in MODELS.values():
        assert set(model.flags.values()) <= flags, model.name
    assert {"--music-control", "--video-control", "--tempo", "--key"} <= flags
    assert all(flag.split()[0] in flags for flag in CONTROL_FLAGS.values())


def test_the_model_choices_and_samplers_come_from_the_cards():
    from v2m.cli import build_parser
    from v2m.models.diffv2m.sampling import SAMPLERS

    assert set(SAMPLER_NAMES) == set(SAMPLERS)
    gen = next(a for a in build_parser()._actions if a.dest == "command").choices["generate"]
    by_dest = {a.dest: a for a in gen._actions}
    assert list(by_dest["model"].choices) == list(MODELS) == ["composer", "diffv2m", "stad"]
    assert list(by_dest["sampler"].choices) == list(SAMPLER_NAMES)
    assert all(m.title in by_dest["model"].help for m in MODELS.values())


def test_options_are_validated_with_one_line():
    assert DiffV2MOptions().sampler == "dpm" and DiffV2MOptions().cfg_scale == 3.0
    for bad, flag in ((dict(sampler="euler"), "--sampler"), (dict(steps=0), "--steps"), (dict(steps=2.5), "--steps"),
                      (dict(cfg_scale=float("nan")), "--cfg")):
        with pytest.raises(V2MError, match=flag):
            DiffV2MOptions(**bad)
    with pytest.raises(V2MError, match="--cfg"):
        StadOptions(cfg_scale=float("inf"))
    with pytest.raises(V2MError, match=r"--model diffv2m does not take --sam, --soundfont \(it takes --checkpoint"):
        card("diffv2m").make_options(sam="x", soundfont="y", steps=None)
    assert card("stad").make_options(cfg_scale=None, sam="s").sam == "s"  # None means the default
    with pytest.raises(V2MError, match="unknown model 'musicgen'; available: composer, diffv2m, stad"):
        card("musicgen")


def test_each_card_names_the_controls_its_model_ignores():
    c = Controls.parse(["pitch,2"], ["0,-1,move,0.5", "1,0,area,2"], tempo=100, key="D minor")
    assert card("composer").ignored_controls(c) == ["objects"]
    assert card("diffv2m").ignored_controls(c) == ["music", "video", "objects", "tempo", "key"]
    assert card("stad").ignored_controls(c) == ["tempo", "key"]
    assert all(m.ignored_controls(Controls()) == [] for m in MODELS.values())


def test_get_generator_builds_from_the_options_object(tmp_path):
    composer = get_generator("composer")
    assert composer.card is MODELS["composer"] and composer.name == "composer" and composer.embedder is None
    with pytest.raises(V2MError, match="--model composer does not take --checkpoint"):
        get_generator("composer", checkpoint="x")


def test_a_control_the_model_ignores_is_one_warning(tmp_path, capsys):
    from v2m.cli import main
    from synthetic import write_video

    video = write_video(tmp_path / "v.mp4", duration=2.0, size=(64, 48), cut_times=[1.0]).path
    code = main(["generate", video, "-o", str(tmp_path / "o.mp4"), "--video-control", "0,0,area,2", "--no-midi",
                 "--no-wav"])
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("v2m: warning")]
    assert code == 0, err
    assert warnings == ["v2m: warning: --model composer does not use --video-control area/position; ignored"]
    summary = [line for line in err.splitlines() if line.startswith(str(tmp_path / "o.mp4"))]
    assert len(summary) == 1 and re.search(r": 2\.0 s, [A-G][#b]? (major|minor), [\d.]+ BPM, [\w-]+, soundfont \S+\.sf[23]",
                                           summary[0]), err


def test_one_device_resolver():
    import torch

    from v2m import codecs, weights
    from v2m.analysis import objects, semantic
    from v2m.models.diffv2m import pipeline as diffv2m_pipeline
    from v2m.models.stad import pipeline as stad_pipeline

    auto = weights.resolve_device("auto")
    assert auto == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert weights.resolve_device("cpu") == torch.device("cpu") and weights.resolve_device("cuda:1").index == 1
    for module in (codecs, semantic, objects, diffv2m_pipeline, stad_pipeline):
        assert module.resolve_device is weights.resolve_device, module.__name__
