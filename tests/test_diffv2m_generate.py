"""Diff-V2M as a generator: windows, joins, our checkpoint folder, and `v2m generate --model diffv2m`
end to end with a tiny model (random weights, built from config)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from v2m.models.diffv2m.generator import join_windows, window_starts


def test_windows_cover_any_length():
    assert window_starts(12.0, 30, 4) == [0]
    assert window_starts(30.0, 30, 4) == [0]
    assert window_starts(40.0, 30, 4) == [0, 10]  # the last window ends at the end
    starts = window_starts(125.3, 30, 4)
    assert starts[0] == 0 and starts[-1] + 30 >= 125.3
    assert all(0 < b - a <= 26 for a, b in zip(starts, starts[1:]))  # each overlaps the next by >= 4 s


def test_windows_join_without_a_jump():
    sr = 1000
    t = np.arange(30 * sr) / sr
    a = np.stack([np.sin(2 * np.pi * 3 * t)] * 2).astype(np.float32)
    b = np.stack([0.8 * np.sin(2 * np.pi * 5 * t + 1.0)] * 2).astype(np.float32)  # another piece, another phase
    out = join_windows([a, b[:, : 20 * sr]], [0, 20], sr, 40 * sr)
    steps = np.abs(np.diff(out[0]))
    own = max(np.abs(np.diff(a[0])).max(), np.abs(np.diff(b[0])).max())
    assert steps.max() <= own * 1.5  # no click: at most the sum of both slopes (sin + cos <= 1.42)
    hard = np.concatenate([a[0, : 20 * sr], b[0, : 20 * sr]])
    assert np.abs(np.diff(hard)).max() > 2 * own  # what a hard cut would do
    np.testing.assert_array_equal(out[:, : 20 * sr], a[:, : 20 * sr])  # outside the overlap: untouched
    np.testing.assert_allclose(out[:, 30 * sr :], b[:, 10 * sr : 20 * sr], atol=1e-6)
    # equal power: two uncorrelated noises keep their level through the crossfade
    rng = np.random.default_rng(0)
    n1, n2 = rng.standard_normal((2, 30 * sr)).astype(np.float32), rng.standard_normal((2, 30 * sr)).astype(np.float32)
    mixed = join_windows([n1, n2], [0, 20], sr, 50 * sr)
    assert 0.9 < mixed[:, 20 * sr : 30 * sr].std() / mixed[:, : 20 * sr].std() < 1.1


TINY_VAE = {  # the official spelling of the tiny Oobleck VAE in conftest (8 latent channels, hop 2048)
    "encoder": {"type": "oobleck", "config": {"in_channels": 2, "channels": 16, "c_mults": [1, 1, 1, 1, 1],
                                              "strides": [2, 4, 4, 8, 8], "latent_dim": 16, "use_snake": True}},
    "decoder": {"type": "oobleck", "config": {"out_channels": 2, "channels": 4, "c_mults": [1, 1, 1, 1, 1],
                                              "strides": [2, 4, 4, 8, 8], "latent_dim": 8, "use_snake": True,
                                              "final_tanh": False}},
    "bottleneck": {"type": "vae"}, "latent_dim": 8, "downsampling_ratio": 2048, "io_channels": 2}


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory, tiny_oobleck_repo):
    from test_diffv2m import randomised, tiny_config

    from v2m.models.diffv2m import DiffV2M
    from v2m.models.diffv2m.pipeline import DiffV2MPipeline
    from v2m.models.diffv2m.vae import OfficialVAE

    config = tiny_config()
    config = replace(config, conditioning=replace(config.conditioning, semantic_dim=24, color_dim=3072),
                     dit=replace(config.dit, io_channels=8), vae=TINY_VAE)
    model = randomised(DiffV2M(config))
    with torch.no_grad():
        for p in model.dit.parameters():
            p.mul_(0.5)  # random weights tame enough for a stable sample
    folder = tmp_path_factory.mktemp("tiny-diffv2m") / "model"
    ema = {k: v + 0.01 for k, v in model.state_dict().items() if k.startswith("dit.")}
    DiffV2MPipeline(config, model, OfficialVAE.from_pretrained(str(tiny_oobleck_repo)), ema).save(folder)
    return folder, model, ema


def test_our_folder_round_trip(tiny_pipeline):
    from v2m.models.diffv2m.pipeline import DiffV2MPipeline

    folder, model, ema = tiny_pipeline
    online = DiffV2MPipeline.load(str(folder), device="cpu", weights="online")
    for k, v in model.state_dict().items():
        assert torch.equal(online.model.state_dict()[k], v), k
    averaged = DiffV2MPipeline.load(str(folder), device="cpu")  # ours default to the EMA weights
    assert torch.equal(averaged.model.state_dict()["dit.proj_in.weight"], ema["dit.proj_in.weight"])
    assert torch.equal(averaged.model.state_dict()["conditioner.color_in.weight"],
                       model.state_dict()["conditioner.color_in.weight"])


def test_generate_with_diffv2m_end_to_end(tiny_pipeline, tiny_clip, tmp_path, capsys):
    from v2m.cli import main
    from v2m.media import probe, read_audio
    from synthetic import write_video

    folder = tiny_pipeline[0]
    video = write_video(tmp_path / "v.mp4", duration=40.0, fps=5, size=(64, 48), cut_times=[7.0, 19.0, 33.0]).path
    args = ["generate", str(video), "--model", "diffv2m", "--checkpoint", str(folder), "--clip", str(tiny_clip),
            "--steps", "3", "--device", "cpu", "--no-midi"]
    assert main([*args, "-o", str(tmp_path / "a.mp4")]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "2 window(s)" in err and "3 dpm steps" in err
    info = probe(str(tmp_path / "a.mp4"))
    assert info.has_audio and abs(info.duration - 40.0) < 0.2
    a = read_audio(tmp_path / "a.wav", 44100, channels=2)
    assert a.shape[1] == 40 * 44100 and np.abs(a).max() > 0.01
    assert main([*args, "-o", str(tmp_path / "b.mp4")]) == 0
    np.testing.assert_array_equal(read_audio(tmp_path / "b.wav", 44100, channels=2), a)  # seeded
    assert main([*args, "-o", str(tmp_path / "c.mp4"), "--seed", "1"]) == 0
    assert not np.array_equal(read_audio(tmp_path / "c.wav", 44100, channels=2), a)


def test_diffv2m_needs_its_weights(tmp_path, capsys):
    from v2m.cli import main
    from synthetic import write_video

    video = write_video(tmp_path / "v.mp4", duration=3.0, fps=5, size=(64, 48)).path
    code = main(["generate", str(video), "--model", "diffv2m", "-o", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "TaylorJi/Diff-V2M" in err and "local cache" in err
    assert not (tmp_path / "o.mp4").exists()


def test_the_official_checkpoint_loads_as_a_pipeline():
    """The golden Lightning checkpoint with its config beside it: official mode, online weights,
    its VAE converted; the pipeline decodes as the official code does."""
    from safetensors.torch import load_file
    from fixture_paths import GOLDEN, golden_checkpoint

    from v2m.models.diffv2m.pipeline import DiffV2MPipeline

    ckpt = golden_checkpoint()
    p = DiffV2MPipeline.load(str(ckpt), device="cpu")
    assert p.config.official and p.ema is None and p.config.dit.embed_dim == 128
    inputs, out = load_file(GOLDEN / "inputs.safetensors"), load_file(GOLDEN / "outputs.safetensors")
    with torch.no_grad():
        audio = p.vae.decode(inputs["vae.decode_latents"])
    assert float((audio - out["vae.decode_out"]).abs().max()) <= 1e-4 * float(out["vae.decode_out"].abs().max())
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert torch.equal(p.model.dit.proj_in.weight, state["diffusion.model.model.transformer.project_in.weight"])


# --- what the checkpoint is loaded with --------------------------------------------------------


def _one_line_error(capsys, code: int, *parts: str) -> str:
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("v2m: error: ") and "Traceback" not in err, err
    assert all(p in err for p in parts), err
    return err


def test_an_official_checkpoint_takes_its_config_from_beside_it_or_config(tmp_path, capsys):
    from fixture_paths import OFFICIAL

    from v2m.cli import main
    from synthetic import write_video

    video = str(write_video(tmp_path / "v.mp4", duration=2.0, fps=5, size=(64, 48)).path)
    ckpt = tmp_path / "weights" / "model.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"not a checkpoint")
    args = ["generate", video, "--model", "diffv2m", "--checkpoint", str(ckpt), "--device", "cpu",
            "-o", str(tmp_path / "o.mp4")]
    _one_line_error(capsys, main(args), str(ckpt), "model_config.json", "--config")  # both ways named
    _one_line_error(capsys, main([*args, "--config", str(tmp_path / "none.json")]), "none.json", "no such config")
    junk = tmp_path / "junk.json"
    junk.write_text("{model_type: diffusion_cond")
    _one_line_error(capsys, main([*args, "--config", str(junk)]), str(junk), "is not a Diff-V2M config")
    # with the published config given, loading gets to the checkpoint itself
    _one_line_error(capsys, main([*args, "--config", str(OFFICIAL / "model_config_odf.json")]), str(ckpt),
                    "cannot be read as a checkpoint")
    _one_line_error(capsys, main([*args[:5], str(ckpt.parent), *args[6:]]), "--config")  # a folder with one .ckpt
    assert not (tmp_path / "o.mp4").exists()


def test_the_official_checkpoint_loads_with_a_config_given(tmp_path):
    from fixture_paths import GOLDEN, golden_checkpoint

    from v2m.errors import V2MError
    from v2m.models.diffv2m.pipeline import DiffV2MPipeline

    link = tmp_path / "golden.ckpt"
    link.symlink_to(golden_checkpoint())
    with pytest.raises(V2MError, match="--config"):
        DiffV2MPipeline.load(str(link), device="cpu")
    p = DiffV2MPipeline.load(str(link), device="cpu", config=GOLDEN / "model_config.json")
    assert p.config.official and p.config.dit.embed_dim == 128 and p.source == str(link)


def test_colour_width_is_checked_against_the_analysis(tiny_pipeline, tiny_clip, tmp_path, capsys):
    from v2m.cli import main
    from v2m.models.diffv2m.pipeline import DiffV2MPipeline
    from synthetic import write_video

    p = DiffV2MPipeline.load(str(tiny_pipeline[0]), device="cpu", weights="online")
    config = replace(p.config, conditioning=replace(p.config.conditioning, color_dim=48))
    model = DiffV2MPipeline(config, type(p.model)(config), p.vae)
    model.save(tmp_path / "model")
    video = str(write_video(tmp_path / "v.mp4", duration=2.0, fps=5, size=(64, 48)).path)
    code = main(["generate", video, "--model", "diffv2m", "--checkpoint", str(tmp_path / "model"), "--clip",
                 str(tiny_clip), "--device", "cpu", "-o", str(tmp_path / "o.mp4")])
    _one_line_error(capsys, code, str(tmp_path / "model"), "48-value colour", "3072-value")


def test_a_checkpoint_whose_vae_encoder_diffusers_cannot_build_still_generates(tiny_pipeline, tiny_clip, tmp_path,
                                                                             capsys):
    import copy

    from test_diffv2m_vae import official_vae_state

    from v2m.cli import main
    from v2m.errors import V2MError
    from v2m.media import probe
    from v2m.models.diffv2m.pipeline import DiffV2MPipeline
    from v2m.models.diffv2m.vae import OfficialVAE, OobleckDecoderOnly
    from synthetic import write_video
    from v2m.train.diffv2m import DiffV2MModule

    vae_config = copy.deepcopy(TINY_VAE)
    vae_config["encoder"]["config"]["channels"] = 8  # its latent_dim (16) is no longer its channel count
    vae = OfficialVAE.from_official(vae_config, official_vae_state(vae_config), source="tiny.ckpt")
    assert vae.model.encoder is None
    p = DiffV2MPipeline.load(str(tiny_pipeline[0]), device="cpu", weights="online")
    folder = tmp_path / "model"
    DiffV2MPipeline(replace(p.config, vae=vae_config), p.model, vae).save(folder)

    video = str(write_video(tmp_path / "v.mp4", duration=3.0, fps=5, size=(64, 48), audio=True).path)
    out = tmp_path / "scored.mp4"
    assert main(["generate", video, "--model", "diffv2m", "--checkpoint", str(folder), "--clip", str(tiny_clip),
                 "--steps", "2", "--device", "cpu", "--no-midi", "-q", "-o", str(out)]) == 0, capsys.readouterr().err
    assert probe(str(out)).has_audio

    # what needs the encoder refuses with one line: preparing latents with it, training on audio
    code = main(["prepare", video, "-o", str(tmp_path / "data"), "--model", "diffv2m", "--no-clip", "--codec",
                 str(folder / "vae"), "--device", "cpu", "-q"])
    _one_line_error(capsys, code, str(folder / "vae"), "only its decoder")
    loaded = DiffV2MPipeline.load(str(folder), device="cpu")
    assert isinstance(loaded.vae.model, OobleckDecoderOnly)
    module = DiffV2MModule(loaded.config, loaded.vae, model=loaded.model)
    with pytest.raises(V2MError) as err:
        module.batch_latents({"audio": torch.randn(1, 2, 4096)})
    assert err.value.path == str(folder / "vae") and "cannot encode audio" in err.value.message
    assert "latent_dim must equal its channels" in err.value.message


def test_a_checkpoint_makes_diffv2m_selectable_in_the_app(tiny_pipeline, tiny_clip, tmp_path):
    """`v2m app --checkpoint-diffv2m` offers Diff-V2M, which scores through the command line's function."""
    import json
    import os

    from v2m.app import jobs
    from v2m.app.page import Studio, build
    from v2m.media import read_audio
    from synthetic import write_video

    studio = Studio({"diffv2m": {"checkpoint": str(tiny_pipeline[0]), "clip": str(tiny_clip), "steps": 2}},
                    root=str(tmp_path / "app"), device="cpu")
    assert studio.models == ["composer", "diffv2m"]
    assert "Only the offline composer" not in json.dumps(build(studio).config, default=str)
    generator = studio.generator("diffv2m")
    assert studio.generator("diffv2m") is generator  # loaded once
    video = write_video(tmp_path / "v.mp4", duration=5.0, fps=5, size=(64, 48), cut_times=[2.0]).path
    stages = []
    result = jobs.score(video, studio.workspace.session("s"), generator=generator, seed=1,
                        progress=lambda stage, f: stages.append(stage))
    audio = read_audio(result.wav, 44100, channels=2)
    assert audio.shape[1] == 5 * 44100 and np.abs(audio).max() > 0.01 and result.midi is None
    assert [s for i, s in enumerate(stages) if s not in stages[:i]] == ["analysis", "music", "render", "mux"]
    assert "2 dpm steps" in jobs.describe(result, "diffv2m")
    assert os.path.basename(result.video) == "v_seed1.mp4"
