"""Music analysis on pieces from the music21 corpus, rendered with a General MIDI soundfont."""

from __future__ import annotations

import numpy as np
import pytest

from v2m import music
from v2m.media import read_audio, write_wav
from synthetic import corpus_music

SR = 44100


@pytest.fixture(scope="module")
def chorale():
    """Bach's BWV 66.6 (F# minor) at 96 quarter notes per minute, 12 s."""
    return corpus_music("bach/bwv66.6", bpm=96, seconds=12.0)


def test_odf_peaks_fall_on_the_note_onsets(chorale):
    times, values = music.odf_peaks(chorale.audio, SR)
    onsets = chorale.onsets[chorale.onsets < 11.5]
    # every onset is found within 50 ms ...
    assert np.mean(np.abs(onsets[:, None] - times[None, :]).min(axis=1) <= 0.05) >= 0.95
    # ... and the strongest peaks are onsets, not noise
    strongest = times[np.argsort(values)[::-1][: len(onsets)]]
    assert np.mean(np.abs(strongest[:, None] - onsets[None, :]).min(axis=1) <= 0.05) >= 0.8


def test_odf_per_second_is_the_official_binning(chorale):
    per_second = music.odf_per_second(chorale.audio, SR)
    assert per_second.shape == (12,) and per_second.dtype == np.float32
    times, values = music.odf_peaks(chorale.audio, SR)
    for sec in range(12):
        near = values[(np.round(times).astype(int) == sec)]
        assert per_second[sec] == pytest.approx(max([0.0, *near]))


def test_tempo_of_a_piece_with_a_known_tempo(chorale):
    b = music.beats(chorale.audio, SR)
    assert b.tempo == pytest.approx(96, rel=0.03)
    assert np.all(np.diff(b.times) > 0) and set(np.round(b.downbeats, 6)) <= set(np.round(b.times, 6))
    assert len(b.downbeats) == pytest.approx(len(b.times) / 4, abs=1)


def test_chroma_of_a_known_key(chorale):
    assert chorale.key == "F# minor"
    f = music.stad_features(chorale.audio, SR)
    f_sharp_minor = {6, 8, 9, 11, 1, 2, 4, 5}  # with the raised seventh (E#)
    top = np.argsort(f["chroma"].mean(axis=1))[::-1][:4]  # (B#, C#'s leading tone, comes fifth)
    assert set(top.tolist()) <= f_sharp_minor


@pytest.mark.filterwarnings("ignore:Trying to estimate tuning")
def test_stad_feature_shapes_at_one_frame_per_second():
    y = np.zeros(30 * SR, np.float32)
    y[::SR // 4] = 0.5
    f = music.stad_features(y, SR)
    assert f["pitch"].shape == (1025, 31) and f["chroma"].shape == (12, 31)
    assert f["loudness"].shape == (31,) and f["spectral_centroid"].shape == (31,)


def test_lowres_rhythm_shapes_and_zscore(chorale):
    mel = music.lowres_mel(chorale.audio, SR)
    tempo = music.lowres_tempogram(chorale.audio, SR)
    assert mel.shape == (12, 16) and tempo.shape == (12, 16)
    z = music.zscore(mel)
    assert abs(z.mean()) < 1e-5 and z.std() == pytest.approx(1.0, abs=1e-3)
    # the low bands of a chorale carry more energy than the top ones
    assert mel[:, :4].mean() > mel[:, -4:].mean()


def test_feature_stats_merge_and_official_format(tmp_path):
    rng = np.random.default_rng(0)
    clips = [{k: rng.normal(i, 1 + i, size=(3, 5)).astype(np.float32) for k in music.STAD_KINDS} for i in range(4)]
    whole, a, b = music.FeatureStats(), music.FeatureStats(), music.FeatureStats()
    for i, c in enumerate(clips):
        whole.update(c)
        (a if i % 2 else b).update(c)
    a.merge(b)
    for kind in music.STAD_KINDS:
        values = np.concatenate([c[kind].ravel() for c in clips]).astype(np.float64)
        assert whole.mean_std(kind) == pytest.approx((values.mean(), values.std()), rel=1e-6)
        assert a.mean_std(kind) == pytest.approx(whole.mean_std(kind), rel=1e-9)
    normalised = whole.normalise(clips[0])
    assert set(normalised) == set(music.STAD_KINDS)
    whole.save(tmp_path / "stats.json")
    back = music.FeatureStats.load(tmp_path / "stats.json")
    assert back.mean_std("pitch") == pytest.approx(whole.mean_std("pitch"))
    import json

    official = json.loads((tmp_path / "stats.json").read_text())
    assert len(official["chroma"]) == 4  # [min, max, mean, std]


def test_audio_from_any_container(chorale, tmp_path, events_video):
    write_wav(tmp_path / "c.wav", chorale.audio, SR)
    back = read_audio(tmp_path / "c.wav", SR)
    assert back.shape == chorale.audio.shape and np.abs(back - chorale.audio).max() < 1e-3
    half = read_audio(tmp_path / "c.wav", 22050, channels=1)
    assert half.shape == (1, chorale.audio.shape[1] // 2)
    track = read_audio(events_video.path, 16000)  # the audio track of an mp4 (a 440 Hz tone)
    spectrum = np.abs(np.fft.rfft(track[0]))
    assert np.argmax(spectrum) * 16000 / len(track[0]) == pytest.approx(440, abs=2)
