"""The composer's sound: which soundfont, per-part stems, the mono guard, rooms and controller
events. Renders use the small TimGM6mb (fast to load) unless a test is about another soundfont."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from v2m.errors import V2MError
from v2m.loudness import LoudnessMeter, mono_loss
from v2m.models.cards import card
from v2m.models.composer import sound
from v2m.models.composer.grid import BeatGrid
from v2m.models.composer.score import Control, Note, Part, Score
from v2m.theory import parse_key

SR = 44100
TIMGM6MB = next(p for p in sound.TIMGM6MB if os.path.isfile(p))
C_MAJOR = parse_key("C major")


def _score(parts, notes, duration, **kw) -> Score:
    times = np.arange(0.0, duration + 2.5, 0.5)  # 120 BPM from 0 s, bars of 4
    grid = BeatGrid(times=times, bar_starts=np.arange(0, len(times) - 4, 4), bpm=120.0)
    return Score(parts, notes, grid=grid, key=C_MAJOR, duration=duration, **kw)


def _chords(part: int, start: float, end: float, pitches=(60, 64, 67)) -> list[Note]:
    return [Note(t, t + 0.9, p, 90, part) for t in np.arange(start, end, 1.0) for p in pitches]


def _energy(x: np.ndarray, a: float, b: float) -> float:
    return float((x[:, int(a * SR) : int(b * SR)].astype(np.float64) ** 2).mean())


# --- the soundfont ------------------------------------------------------------------------------


def _fake_soundfont(path) -> str:
    path.write_bytes(b"RIFF\x04\x00\x00\x00sfbk")
    return str(path)


def test_the_soundfont_order_musescore_general_then_fluidr3_then_timgm6mb_with_a_warning(tmp_path, monkeypatch):
    musescore, fluid, tim = (_fake_soundfont(tmp_path / name) for name in ("ms.sf3", "fluid.sf2", "tim.sf2"))
    monkeypatch.setattr(sound, "MUSESCORE_GENERAL", (str(tmp_path / "absent.sf3"), musescore))
    monkeypatch.setattr(sound, "FLUIDR3", (fluid,))
    monkeypatch.setattr(sound, "TIMGM6MB", (tim,))
    assert sound.choose_soundfont() == (musescore, None)
    os.remove(musescore)
    assert sound.choose_soundfont() == (fluid, None)
    os.remove(fluid)
    path, warning = sound.choose_soundfont()
    assert path == tim and warning.startswith(f"{tim}: ") and "TimGM6mb" in warning
    assert "\n" not in warning and "musescore-general-soundfont" in warning
    assert sound.choose_soundfont(tim) == (tim, None)  # chosen by the user: no warning
    os.remove(tim)
    with pytest.raises(V2MError, match="no General MIDI soundfont found"):
        sound.choose_soundfont()


def test_a_soundfont_3_file_is_accepted_and_other_files_refused(tmp_path):
    sf3 = _fake_soundfont(tmp_path / "x.sf3")
    assert sound.find_soundfont(sf3) == sf3
    junk = tmp_path / "junk.sf3"
    junk.write_bytes(b"OggS" + bytes(20))
    with pytest.raises(V2MError, match=r"junk\.sf3: is not a SoundFont file"):
        sound.find_soundfont(str(junk))
    with pytest.raises(V2MError, match="soundfont not found"):
        sound.find_soundfont(str(tmp_path / "none.sf2"))


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="no dpkg: not a Debian machine")
def test_musescore_generals_candidates_are_where_its_debian_package_puts_it():
    listed = subprocess.run(["dpkg", "-L", "musescore-general-soundfont"], capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("musescore-general-soundfont is not installed (setup.sh installs it)")
    files = [line for line in listed.stdout.splitlines() if line.endswith(".sf3")]
    assert files and files[0] == sound.MUSESCORE_GENERAL[0]
    assert sound.find_soundfont() == files[0]


def test_the_fallback_warning_is_printed_once_per_run(tmp_path, monkeypatch, capsys):
    from v2m.cli import main
    from synthetic import write_video

    monkeypatch.setattr(sound, "MUSESCORE_GENERAL", ())
    monkeypatch.setattr(sound, "FLUIDR3", ())
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        write_video(folder / name, duration=1.5, size=(64, 48), cut_times=[0.8])
    code = main(["generate", str(folder), "-o", str(tmp_path / "out"), "--no-wav", "--no-midi"])
    err = capsys.readouterr().err
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("v2m: warning:")]
    assert len(warnings) == 1 and "TimGM6mb" in warnings[0], err
    assert len([line for line in err.splitlines() if "soundfont TimGM6mb.sf2" in line]) == 2, err


def test_the_summary_names_the_style_and_the_soundfont():
    line = card("composer").describe({"key": "D minor", "bpm": 96.0, "style": "cinematic-strings",
                                      "soundfont": "/usr/share/sounds/sf3/MuseScore_General_Full.sf3"})
    assert line == "D minor, 96.0 BPM, cinematic-strings, soundfont MuseScore_General_Full.sf3"


# --- stems --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strings_and_bass():
    """TimGM6mb's String Ensemble (program 48: its two layers cancel in mono) over a centred bass
    that enters at 2 s; stems rendered with and without the mono guard."""
    parts = [Part("strings", 48, 0, pan=64, reverb=40), Part("bass", 32, 1, pan=64, reverb=20)]
    notes = _chords(0, 0.0, 4.0) + [Note(t, t + 0.45, 36, 100, 1) for t in np.arange(2.0, 4.0, 0.5)]
    score = _score(parts, notes, 4.5)
    raw = score.render_parts(TIMGM6MB, SR, max_mono_loss=None)
    guarded = score.render_parts(TIMGM6MB, SR)
    return score, raw, guarded


def test_stems_are_aligned_isolated_and_sum_to_the_render(strings_and_bass):
    score, _, stems = strings_and_bass
    n = int(round(4.5 * SR))
    assert list(stems) == ["strings", "bass"]
    assert all(s.shape == (2, n) and s.dtype == np.float32 for s in stems.values())
    assert not stems["bass"][:, : int(2.0 * SR)].any()  # nothing of the strings leaks into the bass
    assert _energy(stems["strings"], 0.0, 1.9) > 1e-5 and _energy(stems["bass"], 2.0, 4.0) > 1e-5
    assert np.array_equal(score.render(TIMGM6MB, SR), stems["strings"] + stems["bass"])


def test_a_part_that_cancels_in_mono_is_narrowed_and_a_centred_one_is_untouched(strings_and_bass):
    score, raw, guarded = strings_and_bass
    assert mono_loss(raw["strings"], SR) > 8.0  # TimGM6mb's strings: most of them cancel
    assert 2.8 <= mono_loss(guarded["strings"], SR) <= sound.MAX_MONO_LOSS
    assert 0.0 < score.info["narrowed"]["strings"] < 1.0 and "bass" not in score.info["narrowed"]
    assert np.array_equal(guarded["bass"], raw["bass"])  # bit-identical
    fold = lambda x: x.mean(axis=0)  # noqa: E731
    assert np.allclose(fold(guarded["strings"]), fold(raw["strings"]), atol=1e-6)  # the mono mix is kept


def test_narrowing_an_anti_correlated_stem_to_the_limit():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 0.1, (2, 3 * SR)).astype(np.float32)
    stem = np.stack([x + 0.3 * y, -x + 0.3 * y])  # L-R correlation about -0.8
    assert mono_loss(stem, SR) > 9.0
    narrowed, factor = sound.narrow_for_mono(stem, SR)
    assert 0.0 < factor < 0.5
    assert sound.MAX_MONO_LOSS - 0.1 <= mono_loss(narrowed, SR) <= sound.MAX_MONO_LOSS
    centred = np.stack([x + 0.1 * y, x - 0.1 * y])
    same, one = sound.narrow_for_mono(centred, SR)
    assert same is centred and one == 1.0
    silent = np.zeros((2, SR), np.float32)
    assert sound.narrow_for_mono(silent, SR)[0] is silent


def _mid_side_power(stem: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    meter = LoudnessMeter(SR)
    for a in range(0, stem.shape[1], 10_000):  # in blocks, as a part is rendered
        block = stem[:, a : a + 10_000]
        mid = block.mean(axis=0, dtype=np.float32)
        meter.add(np.stack([mid, block[0] - mid]))
    return tuple(meter.power())


def test_the_narrowing_measured_block_by_block_is_the_narrowing_of_the_whole_stem():
    """narrowing_factor finds from the mid and side power of the gating blocks what
    narrow_for_mono finds from the whole stem, and narrowed() applies it the same way."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 0.1, (2, 3 * SR)).astype(np.float32)
    for stem in (np.stack([x + 0.3 * y, -x + 0.3 * y]), np.stack([x + 0.1 * y, x - 0.1 * y]),
                 np.stack([x, -x]), np.zeros((2, SR), np.float32)):
        whole, factor = sound.narrow_for_mono(stem, SR)
        streamed = sound.narrowing_factor(*_mid_side_power(stem))
        assert streamed == pytest.approx(factor, abs=1e-4)
        assert np.allclose(sound.narrowed(stem, streamed), whole, atol=1e-5)


def test_rendered_stems_read_in_blocks_are_the_stems_and_their_sum_is_the_mix(strings_and_bass, tmp_path):
    score, _, guarded = strings_and_bass
    stems = score.render_stems(TIMGM6MB, SR, folder=str(tmp_path))
    try:
        assert stems.names == ["strings", "bass"] and stems.n == int(round(4.5 * SR))
        assert os.listdir(tmp_path) == []  # anonymous temporary files: nothing to clean up after a crash
        cut = [0, 12_345, 100_000, stems.n]
        for name in stems.names:
            pieces = [stems.read_part(name, a, z) for a, z in zip(cut, cut[1:])]
            assert np.array_equal(np.concatenate(pieces, axis=1), guarded[name])
        mix = stems.read(0, stems.n)
        assert np.array_equal(mix, guarded["strings"] + guarded["bass"])
    finally:
        stems.close()


# --- rooms --------------------------------------------------------------------------------------


def _decay_seconds(x: np.ndarray) -> float:
    """RT60 from the slope of the backward-integrated energy of the tail, -5 to -25 dB."""
    tail = x[:, np.argmax(np.abs(x).max(axis=0)) :].astype(np.float64)
    edc = np.cumsum(((tail**2).sum(axis=0))[::-1])[::-1]
    db = 10 * np.log10(edc / edc[0] + 1e-30)
    return 3.0 * (np.argmax(db <= -25) - np.argmax(db <= -5)) / SR


def test_a_hall_decays_longer_than_a_room_and_a_room_than_the_studio():
    def decay(room: sound.Room) -> float:  # one short clave, all of it sent to the reverb
        s = _score([Part("clave", 0, 9, reverb=127, is_drum=True)], [Note(0.1, 0.15, 75, 110, 0)], 6.0, room=room)
        return _decay_seconds(s.render(TIMGM6MB, SR))

    studio, room, hall = decay(sound.ROOMS["studio"]), decay(sound.ROOMS["room"]), decay(sound.ROOMS["hall"])
    assert studio < 0.5 and hall > 2.0
    assert hall > 1.5 * room > 1.5 * studio
    assert _score([], [], 1.0).room == sound.Room(0.5, 0.4, 0.8, 0.6)  # the default: the settings of before
    with pytest.raises(ValueError, match="Room.level"):
        sound.Room(level=1.5)


# --- controller events --------------------------------------------------------------------------


def test_the_sustain_pedal_holds_a_note_past_its_note_off():
    def render(controls) -> np.ndarray:
        s = _score([Part("piano", 0, 0, reverb=0)], [Note(0.2, 0.4, 60, 100, 0)], 2.0, room=sound.ROOMS["studio"],
                   controls=controls)
        return s.render(TIMGM6MB, SR)

    dry, held = render([]), render([Control(0.2, 0, 64, 127)])  # the pedal goes down as the note starts
    assert np.array_equal(dry[:, : int(0.4 * SR)], held[:, : int(0.4 * SR)])  # the same until the note-off
    assert _energy(held, 0.8, 1.2) > 100 * _energy(dry, 0.8, 1.2)  # then it rings on: over 20 dB more
    released = render([Control(0.2, 0, 64, 127), Control(0.8, 0, 64, 0)])
    assert _energy(released, 1.4, 1.8) < 0.01 * _energy(held, 1.4, 1.8)  # until the pedal comes up


def test_controller_events_are_written_on_their_parts_track_at_their_tick():
    parts = [Part("pad", 89, 0), Part("melody", 73, 1)]
    notes = [Note(1.0, 1.5, 60, 90, 0), Note(1.0, 2.0, 72, 90, 1)]
    controls = [Control(1.0, 0, 64, 127), Control(1.5, 0, 64, 0), Control(0.25, 1, 11, 80)]
    midi = _score(parts, notes, 3.0, controls=controls).to_midi()
    assert [t.name for t in midi.tracks] == ["v2m composer", "pad", "melody"]

    def timed(track):
        now, out = 0, []
        for msg in track:
            now += msg.time
            if msg.type in ("control_change", "note_on", "note_off"):
                out.append((now, msg.type, getattr(msg, "control", getattr(msg, "note", None))))
        return out

    pad, melody = timed(midi.tracks[1]), timed(midi.tracks[2])
    # 120 BPM, beat 0 at 0 s: 1.0 s is tick 960; the pedal goes down before the note it holds starts
    assert pad.index((960, "control_change", 64)) < pad.index((960, "note_on", 60))
    assert (1440, "control_change", 64) in pad and (1440, "note_off", 60) in pad
    assert pad.index((1440, "note_off", 60)) < pad.index((1440, "control_change", 64))
    assert (240, "control_change", 11) in melody and not any(c == 11 for _, _, c in pad)
    cc = [m for m in midi.tracks[1] if m.type == "control_change" and m.control == 64]
    assert [(m.channel, m.value) for m in cc] == [(0, 127), (0, 0)]
    with pytest.raises(ValueError, match="0-127"):
        Control(0.0, 0, 64, 128)
