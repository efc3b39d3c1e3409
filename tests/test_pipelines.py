"""One path per model: the input processors that the generators and the datasets share, the one
sampling call that inference and training samples share, and the generators' common ending."""

from __future__ import annotations

import numpy as np
import torch

from fixture_paths import STAD_EXAMPLE
from test_diffv2m import randomised, tiny_batch, tiny_config
from test_stad import fixture_batch
from test_stad import tiny_config as stad_config
from v2m.analysis.shot_objects import clip_tensors, window_shots
from v2m.controls import MusicControl
from v2m.data.official import load_stad_clip
from v2m.models.base import PEAK, normalised_music
from v2m.models.diffv2m import DiffV2M
from v2m.models.diffv2m.inputs import NO_CLIP_WIDTH, window_inputs
from v2m.models.diffv2m.pipeline import DiffV2MPipeline, sample_latents
from v2m.models.stad import Stad
from v2m.models.stad.inputs import INPUTS
from v2m.models.stad.inputs import window_inputs as stad_window_inputs
from v2m.models.stad.pipeline import StadPipeline
from v2m.train.diffv2m import DiffV2MModule
from v2m.train.stad import StadModule


def test_diffv2m_window_inputs_cut_pad_and_mask():
    rng = np.random.default_rng(0)
    features = {"clip": rng.standard_normal((10, 16)).astype(np.float32), "color_hist": rng.random((10, 24)),
                "scene_cut": (rng.random(10) > 0.5).astype(np.uint8), "pseudo_beat": rng.random(10)}
    item = window_inputs(features, 4, 5, 8)
    assert item.keys() == {"clip", "color", "scene_cut", "pseudo_beat", "mask", "seconds_start", "seconds_total",
                           "class_label"}
    assert item["clip"].shape == (8, 16) and item["color"].shape == (8, 24) and item["scene_cut"].shape == (8,)
    np.testing.assert_array_equal(item["clip"][:5].numpy(), features["clip"][4:9])
    np.testing.assert_array_equal(item["scene_cut"][:5].numpy(), features["scene_cut"][4:9])
    assert not item["clip"][5:].any() and not item["color"][5:].any() and not item["pseudo_beat"][5:].any()
    assert item["mask"].tolist() == [True] * 5 + [False] * 3
    assert (item["clip"].dtype, item["scene_cut"].dtype, item["pseudo_beat"].dtype) == \
        (torch.float32, torch.int64, torch.float32)
    assert (item["seconds_start"], item["seconds_total"], item["class_label"]) == (0.0, 5.0, 2)  # a window's own
    # a dataset clip: its place in the video, its label; no CLIP in the dataset -> zero rows
    clip = window_inputs({**features, "clip": None}, 8, 4, 8, seconds_start=20.0, seconds_total=31.5, class_label=1)
    assert clip["clip"].shape == (8, NO_CLIP_WIDTH) and not clip["clip"].any()
    assert (clip["seconds_start"], clip["seconds_total"], clip["class_label"]) == (20.0, 31.5, 1)
    # rows for 2 of the 4 seconds asked for: zeros after them, the mask follows the seconds asked for
    assert clip["mask"].sum() == 4 and clip["color"][:2].all() and not clip["color"][2:].any()


def test_diffv2m_inference_and_training_samples_are_one_sampling():
    config = tiny_config()
    model = randomised(DiffV2M(config))
    batch = tiny_batch()
    module = DiffV2MModule(config, model=model, sampler="ddim", sample_steps=3, seed=7)
    trained = module.sample(batch, frames=20, use_ema=False)
    assert module.model.training  # put back in training mode
    pipeline = DiffV2MPipeline(config, model.eval(), vae=None)
    inferred = pipeline(batch, generator=torch.Generator().manual_seed(7), sampler="ddim", steps=3, frames=20,
                        output_type="latent")
    assert trained.shape == (2, 4, 20) and torch.equal(trained, inferred)
    # the EMA weights stand in for the DiT's own (the first update copies the weights it is given)
    shifted = {k: v + 0.01 for k, v in module.dit_weights().items()}
    module.ema.update(shifted)
    averaged = module.sample(batch, frames=20)
    model.eval().dit.load_state_dict({k[len("dit."):]: v for k, v in shifted.items()})
    torch.testing.assert_close(averaged, sample_latents(model, batch, generator=torch.Generator().manual_seed(7),
                                                        sampler="ddim", steps=3, frames=20))
    assert not torch.allclose(averaged, trained)


class _Decoder:
    """Stands in for the VAE: each latent frame of the first two channels becomes 8 samples."""

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return latents[:, :2].repeat_interleave(8, -1)


def test_diffv2m_pipeline_decodes_its_latents():
    config = tiny_config()
    pipeline = DiffV2MPipeline(config, randomised(DiffV2M(config)), _Decoder())
    batch = tiny_batch()
    latents = pipeline(batch, generator=torch.Generator().manual_seed(1), steps=2, frames=10, output_type="latent")
    audio = pipeline(batch, generator=torch.Generator().manual_seed(1), steps=2, frames=10)
    assert latents.shape == (2, 4, 10) and audio.shape == (2, 2, 80) and audio.dtype == torch.float32
    torch.testing.assert_close(audio, _Decoder().decode(latents))


def test_stad_window_inputs_lay_out_the_window_shots():
    shots = load_stad_clip(STAD_EXAMPLE)  # 3, 8, 10, 7, 3 seconds
    item = stad_window_inputs(shots, 5, 10, 10, 5, 12)
    laid_out = clip_tensors(window_shots(shots, 5, 10), 10, 5, 12)
    assert tuple(item) == INPUTS and all(np.array_equal(item[k].numpy(), laid_out[k]) for k in INPUTS)
    assert int(item["time_mask"].sum()) == 10 and item["move"].shape == (12, 10, 5, 2)


def test_stad_inference_and_training_samples_are_one_generation():
    torch.manual_seed(0)
    config = stad_config(max_seconds=4)
    module = StadModule(config, seed=3, cfg_scale=2.0)
    batch = fixture_batch(B=1, seconds=4)
    batch["mask"] = batch["time_mask"]
    trained = module.sample(batch)
    assert module.model.training  # put back in training mode
    pipeline = StadPipeline(config, module.model.eval(), codec=None)
    inferred = pipeline(batch, frames=4 * 50, cfg_scale=2.0, generator=torch.Generator().manual_seed(3))
    assert trained.shape == (1, 4, 200) and torch.equal(trained, inferred)


def test_stad_pipeline_applies_the_controls():
    torch.manual_seed(0)
    config = stad_config(max_seconds=4)
    pipeline = StadPipeline(config, Stad(config).eval(), codec=None)
    batch = fixture_batch(B=1, seconds=4)

    def tokens(**controls):
        return pipeline(batch, frames=20, generator=torch.Generator().manual_seed(0), **controls)

    assert torch.equal(tokens(), tokens())
    assert not torch.equal(tokens(), tokens(music_controls=[MusicControl("pitch", 4.0)]))


def test_generated_music_is_peak_normalised_with_its_beats():
    sr = 22050
    t = np.arange(6 * sr) / sr
    clicks = np.where((t % 0.5) < 0.01, np.sin(2 * np.pi * 1000 * t), 0.0)  # 120 bpm
    audio = np.stack([0.3 * clicks, 0.2 * clicks]).astype(np.float32)
    music = normalised_music(audio, sr, {"model": "test"})
    assert abs(float(np.abs(music.audio).max()) - PEAK) < 1e-6 and music.audio.dtype == np.float32
    assert set(music.info) == {"model", "bpm"} and abs(music.info["bpm"] - 120) < 6
    assert len(music.beats) >= 8 and set(music.downbeats) <= set(music.beats)
    silent = normalised_music(np.zeros((2, sr), np.float32), sr, {})
    assert not silent.audio.any() and np.isfinite(silent.audio).all()
