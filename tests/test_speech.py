"""Speech detection (issue 17): the spans where someone speaks, found with Silero VAD.

The speech is espeak-ng's (Debian's ``espeak-ng``, which ``./setup.sh`` installs), placed at a
known time in a longer soundtrack over room tone. Without espeak-ng these tests are skipped with
the reason; ``.ci/run`` sets V2M_REQUIRE_SPEECH=1, which turns that skip into a failure.
"""

from __future__ import annotations


import numpy as np
import pytest

from v2m.analysis import analyze_video
from v2m.analysis.speech import VAD_RATE, _mono_blocks, merge_spans, speech_spans, video_speech_spans
from v2m.errors import V2MError
from v2m.models.composer.styles import STYLES
from synthetic import place, room_tone, write_video

SR = 44100


def iou(found: list[tuple[float, float]], truth: tuple[float, float]) -> float:
    inter = sum(max(0.0, min(z, truth[1]) - max(a, truth[0])) for a, z in found)
    union = (truth[1] - truth[0]) + sum(z - a for a, z in found) - inter
    return inter / union


def test_speech_in_a_known_span_of_room_tone_is_found(sentence):
    track = room_tone(12.0)
    truth = place(track, sentence, 3.0)
    assert 3.5 < truth[1] - truth[0] < 4.6  # the sentence fits 3.0-7.5 s
    found = speech_spans(track, SR)
    assert len(found) == 1, found  # the pauses between its words are not "no speech"
    assert iou(found, truth) >= 0.7
    assert abs(found[0][0] - truth[0]) < 0.3 and abs(found[0][1] - truth[1]) < 0.5


def test_any_sample_rate_and_mono(sentence):
    """48 kHz stereo, 22.05 kHz and 16 kHz mono: the same span."""
    import librosa

    track = room_tone(12.0)
    truth = place(track, sentence, 3.0)
    for rate in (48000, 22050, VAD_RATE):
        resampled = librosa.resample(track, orig_sr=SR, target_sr=rate)
        found = speech_spans(resampled if rate == 48000 else resampled[0], rate)
        assert iou(found, truth) >= 0.7, (rate, found)


def test_sentences_a_breath_apart_are_one_span_and_far_apart_two(sentence, short):
    track = room_tone(20.0)
    first = place(track, short, 1.0)
    second = place(track, sentence, first[1] + 0.45)  # a breath between sentences
    found = speech_spans(track, SR)
    assert len(found) == 1 and iou(found, (first[0], second[1])) >= 0.7, found
    track = room_tone(20.0)
    first = place(track, short, 1.0)
    second = place(track, sentence, first[1] + 4.0)  # a long pause: the music may come back
    found = speech_spans(track, SR)
    assert len(found) == 2, found
    assert iou(found[:1], first) >= 0.6 and iou(found[1:], second) >= 0.7


def test_no_speech_in_silence_room_tone_or_tones():
    t = np.arange(int(6 * SR)) / SR
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) / 6
    sweep = 0.3 * np.sin(2 * np.pi * (200 * t + 150 * t ** 2))
    for audio in (np.zeros((2, 6 * SR), np.float32), room_tone(6.0), 0.3 * np.sin(2 * np.pi * 440 * t), chord, sweep):
        assert speech_spans(np.asarray(audio, np.float32), SR) == []


@pytest.fixture(scope="module")
def edit(tmp_path_factory):
    v = write_video(tmp_path_factory.mktemp("music") / "edit.mp4", duration=12.0, fps=10, size=(64, 36),
                    cut_times=[4.0, 8.0], pulse_times=[2.0, 6.0])
    return analyze_video(v.path)


def _music(edit, style: str | None = None):
    """Twelve seconds of the composer's music for a synthetic edit, in ``style`` (its audio as one
    array: the composer's own is read from its parts a block at a time)."""
    import dataclasses

    from v2m.models import get_generator
    from v2m.models.base import GenerationRequest

    music = get_generator("composer", style=style).generate(GenerationRequest(edit, edit.duration, seed=1))
    try:
        return dataclasses.replace(music, audio=music.array())
    finally:
        music.close()


@pytest.mark.parametrize("style", list(STYLES))
def test_music_is_not_speech(edit, style):
    music = _music(edit, style)
    assert np.sqrt(np.mean(music.audio ** 2)) > 0.01  # it plays
    assert speech_spans(music.audio, music.sample_rate) == []


def test_speech_over_music_is_found(edit, sentence):
    music = _music(edit).audio[:, : 12 * SR] * 0.3
    truth = place(music, sentence, 4.0)
    assert iou(speech_spans(music, SR), truth) >= 0.7


def test_the_blocks_join_as_one_resampling():
    from scipy.signal import resample_poly

    x = np.random.default_rng(3).normal(0.0, 0.1, (2, 5 * SR + 123)).astype(np.float32)
    whole = resample_poly(x.mean(axis=0), 160, 441)
    blocks = np.concatenate(list(_mono_blocks(x, SR, block_seconds=0.7)))
    assert len(blocks) == len(whole)
    np.testing.assert_allclose(blocks, whole, atol=1e-5)


def test_merge_spans():
    assert merge_spans([(5.0, 6.0), (1.0, 2.0), (2.5, 3.0), (3.2, 3.25), (9.0, 9.1)], min_gap=0.7, min_speech=0.3) \
        == [(1.0, 3.25), (5.0, 6.0)]
    assert merge_spans([]) == []


def test_loading_the_model_keeps_torch_threads():
    import torch

    from v2m.analysis import speech

    before = torch.get_num_threads()
    speech._model.cache_clear()
    speech._model()
    assert torch.get_num_threads() == before


def test_a_video_with_speech_in_a_known_span(tmp_path, sentence):
    track = room_tone(10.0)
    truth = place(track, sentence, 2.5)
    v = write_video(tmp_path / "vlog.mp4", duration=10.0, fps=10, size=(64, 36), audio=track)
    assert iou(video_speech_spans(v.path), truth) >= 0.7


def test_a_video_without_sound_is_one_line(tmp_path):
    v = write_video(tmp_path / "silent.mp4", duration=1.0, fps=10, size=(64, 36))
    with pytest.raises(V2MError, match="has no audio track") as e:
        video_speech_spans(v.path)
    assert str(e.value).startswith(v.path)
