"""ControllableV2M: the video encoder on the official fixture, the model's losses, controls."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from v2m.controls import MusicControl, VideoControl
from v2m.analysis.shot_objects import clip_tensors
from v2m.data.official import load_stad_clip
from v2m.models.stad import LMConfig, Stad, StadConfig, VideoConfig
from v2m.models.stad.encoder import random_drop, rotate_and_sum
from v2m.models.stad.model import delay_pattern, undelay

from fixture_paths import STAD_EXAMPLE as FIXTURE


def tiny_config(**video) -> StadConfig:
    return StadConfig(video=VideoConfig(width=32, layers=2, heads=2, **video),
                      lm=LMConfig(hidden_size=32, num_layers=2, num_heads=2, ffn_dim=64))


def fixture_batch(B: int = 2, seconds: int = 35) -> dict:
    t = clip_tensors(load_stad_clip(FIXTURE), seconds=seconds)
    one = {"semantic": t["semantic"], "hist": t["hist"], "area": t["area"], "start": t["start"], "move": t["move"],
           "time_mask": t["time_mask"]}
    return {k: torch.from_numpy(np.stack([v] * B)) for k, v in one.items()}


def training_batch(B=2, T=35, real=31, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    batch = fixture_batch(B, T)
    batch["semantic"][1] = batch["semantic"][1].roll(1, dims=0)  # two different clips
    mask = torch.arange(T)[None].expand(B, T) < real
    batch.update(mask=mask, pitch=torch.randn(B, T, 1025, generator=g), chroma=torch.randn(B, T, 12, generator=g),
                 loudness=torch.randn(B, T, generator=g), spectral_centroid=torch.randn(B, T, generator=g),
                 codes=torch.randint(0, 2048, (B, 4, 50 * T), generator=g),
                 codes_mask=torch.arange(50 * T)[None].expand(B, -1) < 50 * real)
    return batch


def test_official_fixture_runs_through_the_encoder():
    model = Stad(tiny_config()).eval()
    batch = fixture_batch()
    with torch.no_grad():
        tokens = model.encoder.tokens(*(batch[k].float() for k in ("semantic", "hist", "area", "start", "move")))
        video = model.video_features(batch)
    assert tokens.shape == (2, 35, 768) and video.shape == (2, 35, 32) and torch.isfinite(video).all()
    # items of a batch are encoded independently (the official layer attended across the batch)
    other = fixture_batch()
    other["semantic"][1] = torch.randn_like(other["semantic"][1])
    with torch.no_grad():
        assert torch.allclose(model.video_features(other)[0], video[0], atol=1e-5)


def test_movement_rotates_each_object():
    tokens = torch.randn(1, 3, 8)
    still = rotate_and_sum(tokens, torch.zeros(1, 2, 3, 2))
    torch.testing.assert_close(still[0, 0], tokens[0].sum(0))  # no movement: the plain sum
    move = torch.zeros(1, 1, 3, 2)
    move[0, 0, 1, 0] = torch.pi / 2  # object 1 moves in x: its first-half pairs turn by 90 degrees
    turned = rotate_and_sum(tokens, move)[0, 0]
    expect = tokens[0].sum(0).clone()
    a, b = tokens[0, 1, 0:4:2], tokens[0, 1, 1:4:2]
    expect[0:4:2] += -a + b
    expect[1:4:2] += -b - a
    torch.testing.assert_close(turned, expect, atol=1e-5, rtol=1e-5)


def test_feature_free_guidance_drops_whole_units():
    x = torch.ones(2, 10, 5, 4)
    dropped = random_drop(x.clone(), 10, 0.15, torch.Generator().manual_seed(0))
    gone = (dropped.reshape(2, 10, -1).abs().sum(-1) == 0)
    assert int(gone.sum()) == 3  # ceil(20 units x 0.15), whole shots


def test_delay_pattern_round_trip():
    codes = torch.randint(0, 2048, (2, 4, 9))
    delayed, valid = delay_pattern(codes, 2048)
    assert delayed.shape == (2, 4, 12) and int(valid.sum()) == 2 * 4 * 9
    assert (delayed[:, 3, :3] == 2048).all() and torch.equal(undelay(delayed, 9), codes)


def test_losses_and_overfitting_two_clips():
    torch.manual_seed(0)
    model = Stad(tiny_config(max_seconds=6))
    batch = training_batch(T=6, real=5)
    losses = model.training_loss(batch, seed=0)
    assert set(losses) == {"pitch", "chroma", "loudness", "spectral", "ce", "align_input", "align_output", "loss"}
    assert 6.5 < float(losses["ce"]) < 9.0  # about log(2048) at the start
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(120):
        loss = model.training_loss(batch, seed=step)["loss"]
        optim.zero_grad()
        loss.backward()
        optim.step()
    model.eval()
    with torch.no_grad():
        after = model.training_loss(batch, seed=0)
    assert float(after["ce"]) < 0.6 * float(losses["ce"]) and float(after["pitch"]) < float(losses["pitch"])

    # the overfitted model makes different music for different controls (greedy decoding: only the
    # conditions can change the tokens), and the same music for the same ones
    one = {k: v[:1] for k, v in batch.items()}

    def music(video=(), controls=(), item=one):
        cond, mask, _ = model.conditions_for(item, video, controls)
        return model.generate(cond, mask, frames=150, cfg_scale=3.0, top_k=1, generator=torch.Generator().manual_seed(0))

    base = music()
    assert torch.equal(base, music())
    for video, controls in [((), [MusicControl("pitch", 3.0)]), ((), [MusicControl("chroma", 3.0)]), ((), [MusicControl("loudness", 8.0)]),
                            ([VideoControl(-1, -1, "semantic", 0.0)], ()), ([VideoControl(0, -1, "color", 3.0)], ()),
                            ([VideoControl(-1, -1, "move", 2.0)], ())]:
        changed = music(video, controls)
        assert not torch.equal(changed, base), (video, controls)
    assert not torch.equal(music(item={k: v[1:] for k, v in batch.items()}), base)  # the other clip


def test_music_control_changes_only_its_curve():
    model = Stad(tiny_config()).eval()
    with torch.no_grad():
        curves = model.curves(model.video_features(fixture_batch()))
        base = model.condition_tokens(curves)
        fed = {}
        model.condition.register_forward_hook(lambda m, i, o: fed.update(x=i[0]))
        model.condition_tokens(curves, [MusicControl("pitch", 2.0)])
    pitch = slice(0, 1025)
    torch.testing.assert_close(fed["x"][..., pitch], 2 * curves["pitch"])
    torch.testing.assert_close(fed["x"][..., 1025:], torch.cat([curves[k] for k in ("chroma", "loudness", "spectral")], -1))
    assert not torch.allclose(model.condition(fed["x"]), base)


@pytest.mark.parametrize("feature,key", [("semantic", "semantic"), ("color", "hist"), ("area", "area"),
                                         ("position", "start"), ("move", "move")])
def test_video_control_scales_exactly_its_stream(feature, key):
    from v2m.models.stad.encoder import apply_video_controls

    streams = {k: v.float() for k, v in fixture_batch().items() if k != "time_mask"}
    out = apply_video_controls(streams, [VideoControl(1, 2, feature, 0.5)])
    for k in streams:
        changed = ~torch.isclose(out[k], streams[k])
        if k != key:
            assert not changed.any(), k
        else:
            where = changed.nonzero()
            assert len(where) > 0
            axes = (2, 3) if k == "move" else (1, 2)  # shot and object axes
            assert (where[:, axes[0]] == 1).all() and (where[:, axes[1]] == 2).all()


def test_generation_is_seeded_exact_and_continues_a_prompt():
    torch.manual_seed(0)
    model = Stad(tiny_config(max_seconds=4)).eval()
    batch = fixture_batch(B=1, seconds=4)
    cond, mask, _ = model.conditions_for(batch)
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    a = model.generate(cond, mask, frames=37, generator=g(0))
    assert a.shape == (1, 4, 37) and int(a.max()) < 2048  # exactly the frames asked for, no special tokens
    assert torch.equal(a, model.generate(cond, mask, frames=37, generator=g(0)))
    assert not torch.equal(a, model.generate(cond, mask, frames=37, generator=g(1)))
    b = model.generate(cond, mask, frames=60, prompt=a[..., :25], generator=g(2))
    assert torch.equal(b[..., :25], a[..., :25]) and not torch.equal(b[..., 25:37], a[..., 25:37])
    # the KV cache gives what a full forward pass gives
    single, _, _ = model.conditions_for(batch, guidance=False)
    c = model.generate(single, mask[:1], frames=12, cfg_scale=1.0, top_k=1, generator=g(0))  # greedy
    delayed, _ = delay_pattern(c, 2048)
    inputs = torch.cat([torch.full_like(delayed[..., :1], 2048), delayed[..., :-1]], -1)
    with torch.no_grad():
        logits, _ = model.lm_logits(inputs, single, mask[:1])
    greedy = logits.argmax(-1)  # [1, K, S]
    for k in range(4):
        assert torch.equal(greedy[0, k, k : k + 12], c[0, k])


def test_windows_plan_exact_frames_and_prompts():
    from v2m.models.stad.generator import plan_windows

    assert plan_windows(12.0, 30, 10, 50) == [(0, 600, 0)]
    plan = plan_windows(61.3, 30, 10, 50)
    assert plan[0] == (0, 1500, 0) and all(p == 500 for _, _, p in plan[1:])
    covered = plan[-1][0] * 50 + plan[-1][1]
    assert covered == round(61.3 * 50)  # exactly the duration, no extra seconds


def test_window_shots_cut_trajectories():
    from v2m.analysis.shot_objects import window_shots

    shots = load_stad_clip(FIXTURE)  # 3, 8, 10, 7, 3 seconds
    part = window_shots(shots, 5, 10)  # seconds 5..15: the end of shot 1 and the start of shot 2
    assert [s.seconds for s in part] == [6, 4]
    np.testing.assert_array_equal(part[0].position, shots[1].position[..., 2:])
    np.testing.assert_array_equal(part[1].position, shots[2].position[..., :4])


def test_stad_generator_end_to_end(tmp_path, tiny_encodec):
    from v2m.analysis.timeline import Analysis  # noqa: F401  (the request carries an analysis)
    from v2m.codecs import EncodecCodec
    from v2m.controls import Controls
    from v2m.models.base import GenerationRequest
    from v2m.models.stad.generator import StadGenerator
    from v2m.models.stad.pipeline import StadPipeline

    torch.manual_seed(0)
    config = tiny_config()
    folder = tmp_path / "stad"
    StadPipeline(config, Stad(config).eval(), EncodecCodec.load(str(tiny_encodec), device="cpu")).save(folder)
    pipeline = StadPipeline.load(str(folder), device="cpu")
    shots = load_stad_clip(FIXTURE)

    class FakeAnalysis:
        meta = {"source": {"path": "clip.mp4"}}

    gen = StadGenerator(pipeline=pipeline, decompose=lambda analysis: shots, window=4, overlap=1)
    request = GenerationRequest(FakeAnalysis(), 6.5, Controls(), seed=0)
    music = gen.generate(request)
    assert music.audio.shape == (2, int(6.5 * 32000)) and music.info["frames"] == 325
    again = gen.generate(request)
    np.testing.assert_array_equal(music.audio, again.audio)  # seeded
    louder = gen.generate(GenerationRequest(FakeAnalysis(), 6.5, Controls.parse(["pitch,3"], [], None, None), seed=0))
    assert not np.array_equal(louder.audio, music.audio)  # a control changes the music


def test_lm_starts_from_a_musicgen_decoder(tmp_path):
    from dataclasses import replace

    from transformers import EncodecConfig, MusicgenConfig, MusicgenDecoderConfig, MusicgenForConditionalGeneration, T5Config

    t5 = T5Config(d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8, vocab_size=100)
    enc = EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=4, hidden_size=8, upsampling_ratios=[8, 5, 4, 4],
                        codebook_size=2048, codebook_dim=8, target_bandwidths=[2.2], num_lstm_layers=1)
    dec = MusicgenDecoderConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, ffn_dim=64)
    published = MusicgenForConditionalGeneration(MusicgenConfig(text_encoder=t5.to_dict(), audio_encoder=enc.to_dict(),
                                                                decoder=dec.to_dict()))
    published.save_pretrained(tmp_path / "musicgen")
    config = tiny_config()
    config = replace(config, lm=replace(config.lm, init_from=str(tmp_path / "musicgen")))
    model = Stad(config)
    assert torch.equal(model.lm.lm_heads[2].weight, published.decoder.lm_heads[2].weight)
    with pytest.raises(ValueError, match="another"):
        Stad(replace(config, lm=replace(config.lm, num_layers=3)))


def test_generate_with_stad_end_to_end(tmp_path, tiny_encodec, tiny_sam, tiny_clip, capsys):
    """`v2m generate --model stad` from files only: a trained-model folder, SAM and CLIP folders."""
    from v2m.cli import main
    from v2m.codecs import EncodecCodec
    from v2m.media import probe, read_audio
    from v2m.models.stad.pipeline import StadPipeline
    from synthetic import write_video

    torch.manual_seed(0)
    config = tiny_config(semantic_dim=24)  # the tiny CLIP's embedding size
    folder = tmp_path / "stad"
    StadPipeline(config, Stad(config).eval(), EncodecCodec.load(str(tiny_encodec), device="cpu")).save(folder)
    video = write_video(tmp_path / "v.mp4", duration=5.0, fps=5, size=(64, 48), cut_times=[2.0]).path
    args = ["generate", str(video), "--model", "stad", "--checkpoint", str(folder), "--sam", str(tiny_sam),
            "--clip", str(tiny_clip), "--device", "cpu", "--no-midi"]
    assert main([*args, "-o", str(tmp_path / "a.mp4")]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "2 shot(s), 1 window(s), 250 token frames" in err
    assert probe(str(tmp_path / "a.mp4")).has_audio
    a = read_audio(tmp_path / "a.wav", 32000, channels=2)
    assert a.shape[1] == 5 * 32000 and np.abs(a).max() > 0.01
    assert main([*args, "-o", str(tmp_path / "b.mp4"), "--music-control", "pitch,3"]) == 0
    assert not np.array_equal(read_audio(tmp_path / "b.wav", 32000, channels=2), a)
    # a malformed control and missing SAM weights: one line each, nothing written
    assert main([*args, "-o", str(tmp_path / "c.mp4"), "--music-control", "tempo,2"]) == 2
    assert "pitch" in capsys.readouterr().err
    code = main([*args[:7], str(tmp_path / "no-sam"), *args[8:], "-o", str(tmp_path / "d.mp4")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "SAM weights" in err
    assert not (tmp_path / "c.mp4").exists() and not (tmp_path / "d.mp4").exists()
