"""Hard cuts in dark footage, and no false cuts on motion or flashes (issue 13).

The edits are generated (tests/synthetic.py): each shot has its own texture, the texture pans, a square
jumps at the pulses (sudden motion), and a flash lights up two frames without a cut. PySceneDetect's
ContentDetector on the raw frames finds almost none of the dark cuts and calls every flash a cut.
"""

from __future__ import annotations

import numpy as np
import pytest

from v2m.analysis import AnalysisSettings, analyze_video
from v2m.analysis.shots import normalise_contrast
from synthetic import write_dark_edit, write_video

FPS = 25.0
FRAME = 1.0 / FPS
CUTS = [0.8, 1.76, 2.6, 3.52, 4.4]
PULSES = [1.24, 3.0]
FLASHES = [2.04, 4.0]  # two frames each, at least 0.28 s from a cut


def matched(found, expected) -> tuple[int, int]:
    """(expected cuts found within one frame, found cuts that match none)."""
    hits = sum(any(abs(f - c) <= FRAME + 1e-6 for f in found) for c in expected)
    false = sum(not any(abs(f - c) <= FRAME + 1e-6 for c in expected) for f in found)
    return hits, false


@pytest.mark.parametrize(
    "palette, level, seed, flashes",
    [
        ("blue", 0.06, 0, []),  # one hue: consecutive shots differ only in light and shade
        ("blue", 0.12, 1, FLASHES),
        ("night", 0.06, 2, []),
        ("night", 0.12, 3, FLASHES),
    ],
)
def test_cuts_between_dark_shots_are_found(tmp_path, palette, level, seed, flashes):
    v = write_dark_edit(tmp_path / "dark.mp4", palette=palette, level=level, seed=seed, duration=5.2,
                        fps=FPS, size=(96, 64), cut_times=CUTS, pulse_times=PULSES, flash_times=flashes,
                        pan=0.15, grain=2.0)
    a = analyze_video(v.path, AnalysisSettings())
    flash_seconds = {int(f) for f in flashes}
    dark = [b for s, b in enumerate(a.brightness) if s not in flash_seconds]
    assert 0.03 < min(dark) and max(dark) < 0.2, a.brightness  # night footage indeed
    hits, false = matched(a.cut_times, CUTS)
    assert hits >= 0.95 * len(CUTS) and false == 0, a.cut_times


def test_bright_edit_with_motion_and_flashes_has_exactly_its_cuts(tmp_path):
    v = write_video(tmp_path / "bright.mp4", duration=5.2, fps=FPS, size=(96, 64), cut_times=CUTS,
                    pulse_times=PULSES, flash_times=FLASHES, pan=0.3, grain=1.5, drift=0.5)
    a = analyze_video(v.path, AnalysisSettings())
    assert matched(a.cut_times, CUTS) == (len(CUTS), 0), a.cut_times


def test_a_still_noisy_black_shot_has_no_cuts(tmp_path):
    v = write_video(tmp_path / "black.mp4", duration=2.0, fps=FPS, size=(64, 48), brightness=0.02, grain=1.5)
    assert len(analyze_video(v.path, AnalysisSettings()).cut_times) == 0


def test_normalise_contrast_undoes_exposure_and_added_light():
    rng = np.random.default_rng(0)
    scene = rng.uniform(0, 1, (48, 64, 1)) * np.array([0.6, 0.8, 1.0])  # BGR, a bluish texture
    dim = np.round(20 + 40 * scene).astype(np.uint8)  # a dark exposure
    bright = np.round(50 + 160 * scene).astype(np.uint8)  # four times the light, and a lift
    a, b = normalise_contrast(dim).astype(int), normalise_contrast(bright).astype(int)
    assert np.abs(a - b).mean() < 3  # the same picture (up to 8-bit rounding of the dark one)
    assert abs(a.mean() - 128) < 30 and np.abs(dim.astype(int) - bright).mean() > 50
    # a nearly flat frame is amplified at most std / floor (48 / 4) times, not blown up to full contrast
    flat = np.full((48, 64, 3), 10, np.uint8)
    flat[::2] += 1
    out = normalise_contrast(flat).astype(int)
    assert out.max() - out.min() <= 13


def test_scores_and_cuts_are_contentdetectors_own(tmp_path):
    """SceneDetectShots takes ContentDetector's luma-only score itself (HSV value of the
    normalised frame, in one OpenCV call); fed the same normalised frames, PySceneDetect's
    ContentDetector must give the same score at every frame and the same cuts."""
    from scenedetect import StatsManager
    from scenedetect.detectors import ContentDetector

    from v2m.analysis.shots import SceneDetectShots
    from v2m.media import VideoReader, reduce_frame, reduce_frame_bgr, shrink

    v = write_dark_edit(tmp_path / "night.mp4", palette="night", level=0.1, seed=5, duration=4.0, fps=FPS,
                        size=(160, 96), cut_times=[0.8, 1.6, 2.1, 3.2], pulse_times=[1.2], flash_times=[2.6],
                        pan=0.2, grain=2.0)
    detector = SceneDetectShots(min_shot=0.5, fps=FPS)  # as the analysis runs it
    scorer = SceneDetectShots(min_shot=0.5, fps=FPS)  # the same, for its frame scores
    stats = StatsManager()
    theirs = ContentDetector(threshold=detector.threshold, min_scene_len=0.5, luma_only=True)
    theirs.stats_manager = stats
    scores, their_cuts = [], []
    with VideoReader(v.path) as reader:
        for t, frame in reader.frames():
            luma = reduce_frame(frame, 160, 96)  # the analysis size; the detector's is 128 x 76
            detector.push(t, luma, frame)
            scores.append(scorer.score(scorer.brightness(luma, frame)))
            bgr = reduce_frame_bgr(frame, 128, 76, luma=shrink(luma, 128, 76))
            timecode = detector._timecode(t)
            their_cuts += [c.seconds for c in theirs.process_frame(timecode, normalise_contrast(bgr))]
            if len(scores) > 1:
                assert stats.get_metrics(timecode, ["content_val"])[0] == pytest.approx(scores[-1], abs=1e-9)
    found = [cut for cut, _ in detector.finish()]
    assert max(scores) > detector.threshold and len(found) >= 3  # the edit has cuts, and they are found
    assert found == [c for c in sorted(set(their_cuts)) if c > 0]
