"""The per-second video analysis on videos with known cuts, pulses and colours."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import CUTS, FPS, PULSES
from v2m.analysis import Analysis, AnalysisSettings, analyze_video
from v2m.analysis.color import color_descriptors, color_histogram, hsv_histogram, rgbuv_histogram
from v2m.analysis.rhythm import per_second_flags, per_second_max
from v2m.analysis.shots import transitions_from_probabilities
from v2m.media import probe
from synthetic import write_video

FRAME = 1.0 / FPS


@pytest.fixture(scope="module")
def analysis(events_video):
    return analyze_video(events_video.path, AnalysisSettings())


def test_probe_reports_what_the_file_is(events_video):
    info = probe(events_video.path)
    assert info.width == 160 and info.height == 96
    assert info.fps == pytest.approx(FPS)
    assert info.duration == pytest.approx(6.0, abs=0.05)
    assert info.frame_count == 150
    assert info.has_audio and info.audio_codec == "aac" and info.audio_channels == 2
    assert info.rotation == 0


def test_timeline_has_one_row_per_second(analysis):
    assert analysis.duration == pytest.approx(6.0)
    assert analysis.n_seconds == 6
    for name in ("scene_cut", "pseudo_beat", "motion", "brightness", "saturation", "warmth", "sample_times"):
        assert getattr(analysis, name).shape == (6,), name
    assert analysis.color_hist.shape == (6, 3072)
    assert len(analysis.frame_times) == 150
    # each second's sample frame is the one closest to its middle
    np.testing.assert_allclose(analysis.sample_times, np.arange(6) + 0.48, atol=FRAME / 2 + 1e-9)


def test_cuts_found_within_one_frame(analysis):
    assert len(analysis.cut_times) == len(CUTS)
    np.testing.assert_allclose(analysis.cut_times, CUTS, atol=FRAME + 1e-6)
    np.testing.assert_allclose(analysis.shots, [[0, 2.0], [2.0, 4.2], [4.2, 6.0]], atol=FRAME + 1e-6)
    assert analysis.scene_cut.tolist() == [0, 0, 1, 0, 1, 0]


def test_visual_beats_at_the_pulses(analysis):
    beats = analysis.beat_times
    assert len(beats) == len(PULSES), beats
    np.testing.assert_allclose(beats, PULSES, atol=FRAME + 1e-6)
    assert (analysis.beat_strengths > 0.5).all()
    # the cuts are not visual beats; the per-second value is non-zero exactly where a pulse is
    assert (analysis.pseudo_beat > 0).astype(int).tolist() == [0, 1, 0, 1, 0, 1]


def test_transnetv2_finds_the_cuts_and_leaves_global_state_alone(events_video):
    from v2m.analysis import shots

    shots.load_transnetv2.cache_clear()
    torch.manual_seed(123)
    np.random.seed(123)
    expected_torch, expected_np = torch.rand(3), np.random.rand(3)
    torch.manual_seed(123)
    np.random.seed(123)
    a = analyze_video(events_video.path, AnalysisSettings(shots="transnetv2", device="cpu"))
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.equal(torch.rand(3), expected_torch)
    assert np.array_equal(np.random.rand(3), expected_np)
    np.testing.assert_allclose(a.cut_times, CUTS, atol=FRAME + 1e-6)


def test_transnet_runs_become_cuts_and_dissolves():
    times = np.arange(20) * 0.1
    probs = np.zeros(20)
    probs[4] = 0.9  # one flagged frame: hard cut, the new shot starts at the next frame
    probs[10:14] = 0.8  # a dissolve over four frames
    out = transitions_from_probabilities(probs, times, 0.5, min_shot=0.2)
    assert np.allclose(out, [(0.5, 0.5), (1.0, 1.4)])
    # a transition closer than min_shot to the start (or the previous one) is dropped
    assert np.allclose(transitions_from_probabilities(probs, times, 0.5, min_shot=0.6), [(1.0, 1.4)])


def test_variable_frame_rate_is_timed_by_timestamps(vfr_video):
    a = analyze_video(vfr_video.path, AnalysisSettings())
    np.testing.assert_allclose(a.frame_times, vfr_video.frame_times, atol=1e-3)
    assert len(a.cut_times) == 1
    # the cut is where its timestamp says, not where frame index / average rate would put it
    assert a.cut_times[0] == pytest.approx(vfr_video.cut_times[0], abs=0.067)
    index_time = np.searchsorted(vfr_video.frame_times, vfr_video.cut_times[0]) / probe(vfr_video.path).fps
    assert abs(index_time - vfr_video.cut_times[0]) > 0.2
    # the last frame lasts its own 66 ms: 3.98 + 0.066 s -> 5 seconds on the timeline
    assert a.duration == pytest.approx(vfr_video.frame_times[-1] + 0.066, abs=0.002)
    assert a.n_seconds == 5


def test_motion_follows_movement(videos):
    still = write_video(videos / "still.mp4", duration=2.0, fps=FPS, drift=0.0)
    moving = write_video(videos / "moving.mp4", duration=2.0, fps=FPS, drift=1.5)
    m_still = analyze_video(still.path).motion
    m_moving = analyze_video(moving.path).motion
    assert m_still.max() < 0.01
    assert (m_moving > 10 * max(m_still.max(), 1e-4)).all()


def test_colour_features_follow_known_colours(videos):
    colors = [(220, 30, 30), (30, 30, 220), (235, 235, 235)]
    v = write_video(videos / "colours.mp4", duration=3.0, fps=FPS, cut_times=[1.0, 2.0], shot_colors=colors,
                    size=(96, 64))
    a = analyze_video(v.path)
    red, blue, white = 0, 1, 2
    assert a.warmth[red] > 0.3 and a.warmth[blue] < -0.3 and abs(a.warmth[white]) < 0.1
    assert a.saturation[red] > 0.5 and a.saturation[blue] > 0.5 and a.saturation[white] < 0.2
    assert a.brightness[white] > a.brightness[red] and a.brightness[white] > a.brightness[blue]
    np.testing.assert_allclose(a.color_hist.sum(axis=1), 1.0, rtol=1e-5)
    # rgb-uv: the red-channel grid (first 1024 values) holds red's mass at u, v > 0
    grid_red = a.color_hist[red, :1024].reshape(32, 32)
    assert grid_red[16:, 16:].sum() > 0.5 * grid_red.sum()
    grid_blue_r = a.color_hist[blue, :1024].reshape(32, 32)
    assert grid_blue_r[16:, 16:].sum() < 0.1 * grid_blue_r.sum()


def test_colour_recipes_on_flat_images():
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    gray = np.full((8, 8, 3), 128, np.uint8)
    h = rgbuv_histogram(red)
    assert h.shape == (3072,) and h.sum() == pytest.approx(1.0)
    assert h[:1024].reshape(32, 32)[31, 31] == pytest.approx(h[:1024].sum())  # clipped to the far corner
    g = rgbuv_histogram(gray).reshape(3, 32, 32)  # equal channels: u = v = 0, the centre bin
    assert all(g[c, 16, 16] == pytest.approx(1 / 3, rel=1e-4) for c in range(3))
    hsv = hsv_histogram(red)
    assert hsv.shape == (3072,) and hsv.argmax() == np.ravel_multi_index((0, 15, 11), (16, 16, 12))
    assert color_histogram(red, "hsv16x16x12").tolist() == hsv.tolist()
    with pytest.raises(ValueError, match="rgbuv32"):
        color_histogram(red, "lab")
    b, s, w = color_descriptors(red)
    assert (b, s, w) == pytest.approx((0.2126, 1.0, 1.0), abs=1e-4)


def test_colour_features_match_their_per_pixel_definitions():
    """The histogram looks its bins up in tables and the descriptors come from OpenCV means;
    both must equal the definitions in v2m.analysis.color, pixel by pixel."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    rgb[:6] = 0  # black pixels: no weight, saturation 0
    rgb[6:12, :, 2] = 255  # saturated blue: clipped uv
    img = rgb.reshape(-1, 3).astype(np.float64) / 255.0
    logs = np.log(img + 1e-6)
    weight = np.sqrt((img**2).sum(axis=1))
    expected = np.zeros((3, 32, 32))
    for c in range(3):
        o1, o2 = [k for k in range(3) if k != c]
        u = np.clip(np.floor((logs[:, c] - logs[:, o1] + 3.0) * 32 / 6.0), 0, 31).astype(int)
        v = np.clip(np.floor((logs[:, c] - logs[:, o2] + 3.0) * 32 / 6.0), 0, 31).astype(int)
        np.add.at(expected[c], (u, v), weight)
    got = rgbuv_histogram(rgb).reshape(3, 32, 32)
    close = np.isclose(got, expected / expected.sum(), rtol=1e-5, atol=1e-7)
    assert close.mean() > 0.995  # all bins but, at most, a pixel rounded across a bin edge
    hi, lo = img.max(axis=1), img.min(axis=1)
    saturation = np.where(hi > 0, (hi - lo) / np.where(hi > 0, hi, 1.0), 0.0).mean()
    brightness = (img @ [0.2126, 0.7152, 0.0722]).mean()
    warmth = (img[:, 0] - img[:, 2]).mean()
    assert color_descriptors(rgb) == pytest.approx((brightness, saturation, warmth), abs=1e-6)


def test_per_second_helpers():
    assert per_second_flags([0.5, 2.99, 3.0], 4).tolist() == [1, 0, 1, 1]
    assert per_second_max(np.array([0.1, 0.2, 2.5]), np.array([0.3, 0.9, 0.4]), 3).tolist() == pytest.approx(
        [0.9, 0.0, 0.4]
    )


def test_odd_and_large_sizes_and_rotation(videos):
    odd = write_video(videos / "odd.mp4", duration=1.0, fps=FPS, size=(33, 17), pix_fmt="yuv444p")
    a = analyze_video(odd.path)
    assert a.meta["probe"]["width"] == 33 and a.meta["probe"]["pix_fmt"] == "yuv444p" and a.n_seconds == 1
    big = write_video(videos / "uhd.mp4", duration=0.2, fps=FPS, size=(3840, 2160), preset="ultrafast")
    a = analyze_video(big.path)
    assert a.meta["analysis_size"] == [256, 144] and a.n_seconds == 1
    rotated = write_video(videos / "rotated.mp4", duration=1.0, fps=FPS, size=(96, 64), rotation=90)
    info = probe(rotated.path)
    assert info.rotation == 90 and info.display_size == (64, 96)
    assert analyze_video(rotated.path).meta["probe"]["rotation"] == 90


def test_save_and_load_round_trip(analysis, tmp_path):
    path = tmp_path / "a.v2m.npz"
    analysis.save(path)
    back = Analysis.load(path)
    assert back.meta == analysis.meta
    for name in ("transitions", "frame_times", "beat_times", "color_hist", "pseudo_beat", "motion"):
        np.testing.assert_array_equal(getattr(back, name), getattr(analysis, name))
    assert back.clip is None
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_unknown_format_version_is_refused(analysis, tmp_path):
    from v2m.errors import V2MError

    analysis.meta["version"] = 99
    try:
        analysis.save(tmp_path / "future.v2m.npz")
    finally:
        analysis.meta["version"] = 1
    with pytest.raises(V2MError, match="version 99"):
        Analysis.load(tmp_path / "future.v2m.npz")


def test_failed_save_leaves_no_file(analysis, tmp_path, monkeypatch):
    def broken(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(KeyboardInterrupt):
        analysis.save(tmp_path / "x.v2m.npz")
    assert list(tmp_path.iterdir()) == []


def test_progress_is_reported_once_per_second(events_video):
    calls = []
    analyze_video(events_video.path, progress=lambda t, duration: calls.append((t, duration)))
    assert len(calls) == 6
    assert [round(t, 2) for t, _ in calls] == sorted(round(t, 2) for t, _ in calls)
    assert all(d == pytest.approx(6.0, abs=0.05) for _, d in calls)


def test_clip_frames_are_upright_and_bounded(videos):
    import av

    from v2m.analysis.video import _clip_input

    frame = av.VideoFrame.from_ndarray(np.zeros((480, 640, 3), np.uint8), format="rgb24")
    assert _clip_input(frame, 0, 224).shape == (224, 299, 3)  # shortest side reduced, aspect kept
    assert _clip_input(frame, 90, 224).shape == (299, 224, 3)  # portrait, as a player shows it
    assert _clip_input(frame, 0, 1000).shape == (480, 640, 3)  # never enlarged


def test_the_decoder_leaves_one_core_to_the_analysis(monkeypatch):
    import os

    from v2m.analysis.video import decoding_threads

    assert decoding_threads(3) == 3  # asked for: as asked
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert decoding_threads() == 7
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert decoding_threads() == 1  # never none
