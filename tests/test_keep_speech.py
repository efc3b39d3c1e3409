"""`v2m generate --keep-speech`: the original soundtrack kept, the music ducked wherever someone
speaks in it and written thinner there, measured in the output.

The music in an output is what is left when the original sound (found in it by least squares:
the music is not correlated with it) is taken away."""

from __future__ import annotations

import json

import mido
import numpy as np
import pytest

from v2m.cli import main
from v2m.loudness import integrated_loudness
from v2m.media import read_audio
from v2m.soundtrack import generate
from synthetic import corpus_music, place, room_tone, write_video

SR = 44100

SPEECH_AT = 5.0


@pytest.fixture(scope="module")
def vlog(tmp_path_factory, sentence):
    """16 s of room tone with a sentence from 5.0 s (about 4 s long); cuts at 4 and 10 s."""
    track = room_tone(16.0)
    span = place(track, sentence, SPEECH_AT)
    video = write_video(tmp_path_factory.mktemp("vlog") / "vlog.mp4", duration=16.0, fps=10, size=(64, 36),
                        cut_times=[4.0, 10.0], audio=track)
    return video.path, span


def _music_in(output: np.ndarray, original: np.ndarray) -> tuple[np.ndarray, float]:
    """The music in ``output`` and the gain the original sound has in it."""
    n = min(output.shape[1], original.shape[1])
    out, orig = output[:, :n].ravel(), original[:, :n].ravel()
    gain = float(out @ orig / (orig @ orig))
    return (out - gain * orig).reshape(2, n), gain


def _db(x: np.ndarray, a: float, z: float) -> float:
    part = x[:, int(a * SR): int(z * SR)]
    return 20 * np.log10(np.sqrt(np.mean(part ** 2)) + 1e-12)


def test_the_music_makes_room_for_speech(vlog, tmp_path):
    video, (start, end) = vlog
    r = generate(video, str(tmp_path / "out.mp4"), keep_speech=True, seed=1)
    out, original = read_audio(r.wav, SR), read_audio(video, SR)
    music, gain = _music_in(out, original)
    assert gain > 0.5  # the speech is there, at the level of the music's neighbourhood
    inside = _db(music, start + 0.3, end - 0.3)
    outside = max(_db(music, 0.5, start - 1.0), _db(music, end + 1.5, 15.5))
    assert outside - inside >= 9.0  # ducked by about 12 dB
    assert integrated_loudness(out, SR) == pytest.approx(-14.0, abs=0.3)  # the target is the final mix's
    rec = json.loads((tmp_path / "out.json").read_text())
    assert rec["speech"] and rec["speech"][0][0] == pytest.approx(start, abs=0.3)
    # the composer wrote under the dialogue: no melody note starts while someone speaks
    melody = _melody_onsets(r.midi)
    assert len(melody) > 5 and not any(start - 0.2 < t < end for t in melody)


def _melody_onsets(path: str) -> list[float]:
    """The melody's note starts in the video's time (from its ``video start`` marker)."""
    midi = mido.MidiFile(path)
    channel = next(m.channel for t in midi.tracks if t.name == "melody" for m in t if m.type == "note_on")
    now, start, onsets = 0.0, None, []
    for m in midi:  # all tracks, in seconds through the tempo map
        now += m.time
        if m.type == "marker" and m.text == "video start":
            start = now
        elif m.type == "note_on" and m.velocity > 0 and m.channel == channel:
            onsets.append(now)
    return [t - start for t in onsets]


def test_no_speech_no_ducking(tmp_path):
    quiet = write_video(tmp_path / "quiet.mp4", duration=8.0, fps=10, size=(64, 36), cut_times=[3.0],
                        audio=room_tone(8.0)).path
    kept = generate(quiet, str(tmp_path / "a.mp4"), keep_speech=True, seed=3)
    mixed = generate(quiet, str(tmp_path / "b.mp4"), mix=1.0, seed=3)
    np.testing.assert_array_equal(read_audio(kept.wav, SR), read_audio(mixed.wav, SR))
    assert json.loads((tmp_path / "a.json").read_text())["speech"] == []


def test_music_does_not_trigger_the_ducking(tmp_path):
    piece = corpus_music(seconds=10.0)
    concert = write_video(tmp_path / "concert.mp4", duration=10.0, fps=10, size=(64, 36), cut_times=[5.0],
                          audio=piece.audio).path
    kept = generate(concert, str(tmp_path / "a.mp4"), keep_speech=True, seed=2)
    mixed = generate(concert, str(tmp_path / "b.mp4"), mix=1.0, seed=2)
    np.testing.assert_array_equal(read_audio(kept.wav, SR), read_audio(mixed.wav, SR))


def test_keep_speech_needs_a_soundtrack(tmp_path, capsys):
    silent = write_video(tmp_path / "silent.mp4", duration=3.0, fps=10, size=(64, 36)).path
    assert main(["generate", silent, "-o", str(tmp_path / "o.mp4"), "--keep-speech", "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"v2m: error: {silent}: has no audio track, so there is no speech to find in it"
    assert not (tmp_path / "o.mp4").exists()
