"""Audio codecs (EnCodec tokens, Oobleck VAE latents) from tiny models saved to a folder, and the
codec targets that `v2m prepare` stores and the datasets serve."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from v2m.cli import main
from v2m.codecs import OobleckCodec, load_codec
from v2m.errors import WeightsUnavailable
from synthetic import write_video


def _tone(seconds: float, sr: int, channels: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
    return np.repeat(y[None], channels, 0).astype(np.float32)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    d = tmp_path_factory.mktemp("codec-src")
    write_video(d / "a.mp4", duration=12.0, fps=10, size=(64, 48), cut_times=[5.0], audio=True)
    return d / "a.mp4"


def test_encodec_tokens(tiny_encodec):
    codec = load_codec("encodec", str(tiny_encodec), device="cpu")
    assert (codec.info.sample_rate, codec.info.channels, codec.info.frame_rate) == (32000, 1, 50.0)
    codes = codec.encode(_tone(2.5, 32000, 1), 32000)["codes"]
    assert codes.shape == (4, 125) and codes.dtype == np.int16
    assert codes.min() >= 0 and codes.max() < 2048 and len(np.unique(codes)) > 1
    np.testing.assert_array_equal(codec.encode(_tone(2.5, 32000, 1), 32000)["codes"], codes)  # deterministic
    # stereo 44.1 kHz input is mixed down and resampled to what the codec takes
    assert codec.encode(_tone(2.5, 44100, 2), 44100)["codes"].shape == (4, 125)
    audio = codec.decode({"codes": codes})
    assert audio.shape == (1, 80000) and np.isfinite(audio).all()


def test_oobleck_latents_found_in_a_repository_folder(tiny_oobleck_repo):
    codec = load_codec("oobleck", str(tiny_oobleck_repo), device="cpu")  # finds vae/ inside
    assert (codec.info.sample_rate, codec.info.channels, codec.info.hop_length) == (44100, 2, 2048)
    assert codec.info.frames(30.0) == 645  # the official 30 s latent length
    z = codec.encode(_tone(2.0, 44100, 2), 44100)
    assert z["latent_mean"].shape == (8, 43) and z["latent_mean"].dtype == np.float16
    assert z["latent_std"].shape == (8, 43) and (z["latent_std"] > 0).all()
    a = OobleckCodec.sample(z["latent_mean"], z["latent_std"], torch.Generator().manual_seed(1))
    b = OobleckCodec.sample(z["latent_mean"], z["latent_std"], torch.Generator().manual_seed(1))
    c = OobleckCodec.sample(z["latent_mean"], z["latent_std"], torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # the draw is spread around the mean by the posterior's std
    ratio = ((a - torch.from_numpy(z["latent_mean"]).float()) / torch.from_numpy(z["latent_std"]).float()).std()
    assert 0.7 < float(ratio) < 1.3
    audio = codec.decode({"latents": a.numpy()})
    assert audio.shape == (2, 43 * 2048) and np.isfinite(audio).all()
    # the vae folder itself loads too
    assert load_codec("oobleck", str(tiny_oobleck_repo / "vae"), device="cpu").info.hop_length == 2048


def test_codec_weights_that_cannot_load_say_so(tmp_path):
    with pytest.raises(WeightsUnavailable) as e:
        load_codec("encodec", str(tmp_path / "missing"))
    assert "no such directory" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(WeightsUnavailable) as e:
        load_codec("oobleck")  # the default hub id; tests run offline with an empty cache
    assert "local cache" in str(e.value) and "stabilityai/stable-audio-open-1.0" in str(e.value)


def test_prepare_stad_stores_tokens_and_the_dataset_serves_them(source, tiny_encodec, tmp_path, capsys):
    from v2m.data.datasets import StadDataset

    out = tmp_path / "stad"
    assert main(["prepare", str(source), "-o", str(out), "--model", "stad", "--clip-seconds", "10",
                 "--min-seconds", "10", "--no-clip", "--codec", str(tiny_encodec), "--splits", "100/0/0", "-q"]) == 0
    row = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    assert row["codec"]["name"] == "encodec" and row["codec"]["frame_rate"] == 50.0
    with np.load(out / row["features"]) as z:
        assert z["codes"].shape == (4, 500) and z["codes"].dtype == np.int16
        codes = z["codes"]
    summary = json.loads((out / "dataset.json").read_text())
    assert summary["codec"]["source"] == str(tiny_encodec) and summary["clips_with_codec"] == 1
    item = StadDataset(out, max_seconds=12, random_crop=False, audio=False)[0]
    assert item["codes"].shape == (4, 600) and item["codes_mask"].sum() == 500 and "audio" not in item
    np.testing.assert_array_equal(item["codes"][:, :500].numpy(), codes)
    # a 4 s crop takes the tokens of the same 4 seconds
    crop = StadDataset(out, crop_seconds=4, random_crop=True, seed=3)
    for _ in range(5):
        it = crop[0]
        s = int(it["seconds_start"])
        np.testing.assert_array_equal(it["codes"].numpy(), codes[:, s * 50 : s * 50 + 200])
    # target shift moves the mask with the tokens: padding is never a target
    shifted = StadDataset(out, max_seconds=12, random_crop=False, target_shift=True, seed=0)
    seen = set()
    for _ in range(12):
        it = shifted[0]
        n = 500 - int(it["codes_mask"].sum())
        seen.add(n > 0)
        np.testing.assert_array_equal(it["codes"][:, : 500 - n].numpy(), codes[:, n:])
    assert seen == {True, False}


def test_prepare_diffv2m_stores_the_vae_posterior(source, tiny_oobleck_repo, tmp_path):
    from v2m.data.datasets import DiffV2MDataset

    out = tmp_path / "diff"
    assert main(["prepare", str(source), "-o", str(out), "--clip-seconds", "10", "--min-seconds", "10",
                 "--no-clip", "--codec", str(tiny_oobleck_repo), "--splits", "100/0/0", "-q"]) == 0
    row = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    with np.load(out / row["features"]) as z:
        frames = z["latent_mean"].shape[1]
        assert z["latent_mean"].shape == (8, frames) and z["latent_std"].dtype == np.float16
    assert frames == 215  # floor(441000 / 2048), as the official 30 s -> 645
    ds = DiffV2MDataset(out, max_seconds=12, random_crop=False, sample_latents=False)
    item = ds[0]
    assert item["latents"].shape == (8, 258) and int(item["latents_mask"].sum()) == 215  # floor(10 s * 44100 / 2048)
    assert not item["latents"][:, 215:].any()
    drawn = DiffV2MDataset(out, max_seconds=12, random_crop=False)
    assert not torch.equal(drawn[0]["latents"], drawn[0]["latents"])  # a fresh draw each time


def test_default_codec_unavailable_goes_on_then_fills_in(source, tiny_encodec, tmp_path):
    from v2m.data.prepare import PrepareSettings, run_prepare
    from v2m.analysis import AnalysisSettings

    later = tmp_path / "weights"
    settings = PrepareSettings(model="stad", clip_seconds=10, codec=str(later), analysis=AnalysisSettings())
    out = tmp_path / "ds"
    warnings = []
    summary, failed = run_prepare([str(source)], str(out), settings, progress=False, warn=warnings.append)
    assert not failed and summary["clips_with_codec"] == 0 and len(warnings) == 1
    assert "without codec targets" in warnings[0]
    shutil.copytree(tiny_encodec, later)  # the weights arrive: the next run adds the tokens
    summary, failed = run_prepare([str(source)], str(out), settings, progress=False, warn=warnings.append)
    assert not failed and summary["clips_with_codec"] == summary["clips"] == 1 and len(warnings) == 1


def test_explicit_codec_must_load(source, tmp_path, capsys):
    out = tmp_path / "ds"
    code = main(["prepare", str(source), "-o", str(out), "--model", "stad", "--no-clip", "--codec",
                 str(tmp_path / "nowhere"), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "no such directory for the EnCodec weights" in err
    assert not (out / "manifest.jsonl").exists()
