"""What both models' training shares (v2m.train.settings, v2m.train.common): the published settings
in one place, read by `v2m train`; the checkpoint helpers; audio sample writing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from v2m.errors import V2MError
from v2m.train.settings import PUBLISHED, STRATEGIES, TrainSettings, published


def test_published_settings_are_in_one_place(capsys):
    from v2m.cli import build_parser

    assert (PUBLISHED["diffv2m"].max_epochs, PUBLISHED["diffv2m"].batch_size) == (50, 32)
    assert (PUBLISHED["stad"].max_epochs, PUBLISHED["stad"].batch_size) == (100, 6)
    assert published("max_epochs") == "diffv2m 50, stad 100"
    # `v2m train` shows and uses them
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "as published: diffv2m 50, stad 100" in text and "as published: diffv2m 32, stad 6" in text
    assert "{" + ",".join(STRATEGIES) + "}" in text
    args = parser.parse_args(["train", "stad", "--data", "d", "-o", "o"])
    assert (args.seed, args.workers, args.accumulate, args.checkpoint_every, args.strategy, args.max_steps) == \
        (TrainSettings.seed, TrainSettings.num_workers, TrainSettings.accumulate, TrainSettings.checkpoint_every,
         TrainSettings.strategy, TrainSettings.max_steps)


def test_the_settings_load_without_torch():
    code = "import sys, v2m.train.settings, v2m.cli; v2m.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_run_settings_take_the_published_ones_and_the_changes():
    from v2m.train.common import run_settings

    assert run_settings("stad", None, {"max_steps": 3}) == replace(PUBLISHED["stad"], max_steps=3)
    mine = TrainSettings(max_epochs=2, batch_size=1)
    assert run_settings("diffv2m", mine, {}) == mine
    with pytest.raises(TypeError):
        run_settings("diffv2m", None, {"epochs": 3})  # not a setting


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is not None, reason="deepspeed is installed")
def test_deepspeed_without_its_package_is_refused_before_anything_loads(tmp_path):
    from v2m.train.diffv2m import fit as fit_diffv2m
    from v2m.train.stad import fit as fit_stad

    for fit in (fit_diffv2m, fit_stad):
        with pytest.raises(V2MError, match="needs the deepspeed package"):
            fit(None, tmp_path / "no-data", tmp_path / "out", strategy="deepspeed")
    assert not (tmp_path / "out").exists()


def test_checkpoint_helpers(tmp_path):
    from v2m.train.common import checkpoint_config, model_weights, read_checkpoint

    path = tmp_path / "last.ckpt"
    weights = {"model.a": torch.zeros(2), "model.b.c": torch.ones(1), "other": torch.ones(3)}
    torch.save({"state_dict": weights, "hyper_parameters": {"config": {"x": 1}}}, path)
    state = read_checkpoint(path, "Test")
    assert model_weights(state).keys() == {"a", "b.c"}
    assert checkpoint_config(state, lambda c: c["x"], "Test") == 1
    with pytest.raises(V2MError, match="was not written by v2m's Test training") as err:
        checkpoint_config({"state_dict": {}}, dict, "Test", path)
    assert err.value.path == str(path)
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(V2MError, match="cannot be read as a Test training checkpoint"):
        read_checkpoint(tmp_path / "bad.ckpt", "Test")


def test_samples_are_cut_to_their_seconds_and_peak_normalised(tmp_path):
    from v2m.media import read_audio
    from v2m.train.common import AudioSamples

    class Module(AudioSamples, torch.nn.Module):  # written outside a Trainer
        _trainer, global_step = None, 7

    sr = 8000
    tone = np.sin(2 * np.pi * 440 * np.arange(4 * sr) / sr).astype(np.float32)
    clips = [np.stack([0.2 * tone, 0.1 * tone]), np.stack([0.5 * tone, 0.5 * tone])]
    batch = {"mask": torch.tensor([[True] * 3 + [False], [True] * 2 + [False] * 2])}
    paths = Module().write_samples(iter(clips), batch, sr, tmp_path)
    assert [p.name for p in paths] == ["step00000007_0.wav", "step00000007_1.wav"]
    for path, seconds in zip(paths, (3, 2)):
        audio = read_audio(path, sr, channels=2)
        assert audio.shape == (2, seconds * sr) and abs(float(np.abs(audio).max()) - 1.0) < 1e-3
