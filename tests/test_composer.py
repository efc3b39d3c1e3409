"""The offline composer's music (issue 15): behaviour a listener hears, on each style."""

from __future__ import annotations

import io
import os

import mido
import numpy as np
import pytest

from v2m.analysis import analyze_video
from v2m.cli import main
from v2m.controls import Controls
from v2m.errors import V2MError
from v2m.evaluate import symbolic as S
from v2m.models.composer import compose
from v2m.models.composer.sound import ROOMS
from v2m.models.composer.styles import STYLES
from synthetic import write_video


@pytest.fixture(scope="module")
def one_shot(tmp_path_factory):
    """Five minutes of one calm shot: nothing in the picture tells the music to change."""
    v = write_video(tmp_path_factory.mktemp("one") / "one.mp4", duration=300.0, fps=5, size=(64, 36),
                    cut_times=[], drift=0.02)
    return analyze_video(v.path)


@pytest.fixture(scope="module")
def edit(tmp_path_factory):
    """40 s with cuts 3-9 s apart."""
    v = write_video(tmp_path_factory.mktemp("edit") / "edit.mp4", duration=40.0, fps=10, size=(64, 36),
                    cut_times=[4.1, 9.0, 15.6, 19.2, 27.5, 31.0, 36.3], pulse_times=[2.0, 12.2, 24.4],
                    shot_colors=[(220, 180, 120), (40, 60, 160), (200, 200, 190), (60, 150, 70)])
    return analyze_video(v.path)


def _line(score, part):
    notes = sorted(score.notes_of(part), key=lambda n: n.start)
    return np.array([n.start for n in notes]), np.array([n.end for n in notes]), np.array([n.pitch for n in notes])


def _bar_lines(score):
    bars = [b for b in score.grid.bars() if b[0] < score.duration]
    return np.array([b[0] for b in bars] + [score.grid.times[score.grid.times > bars[-1][-1]][0]])


def test_a_long_single_shot_still_moves(one_shot):
    s = compose(one_shot, one_shot.duration, seed=0)
    on, _, p = _line(s, "melody")
    assert len(p) > 100
    assert S.longest_repeat_run(p) <= 4  # never eight bars (nor five notes) on one pitch
    assert S.repeated_note_ratio(p) <= 0.25
    assert S.repeated_bar_share(on, p, _bar_lines(s)) <= 0.5
    assert len(s.info["form"].split()) >= 4  # a form (A B A' ...) even without a cut


@pytest.mark.parametrize("style", list(STYLES))
def test_each_style_ends_on_the_tonic_with_the_melody_above_the_harmony(edit, style):
    s = compose(edit, edit.duration, seed=2, style=style)
    assert s.info["style"] == style
    pitched = [n for n in s.notes if not s.parts[n.part].is_drum]
    on, end, p = (np.array([getattr(n, k) for n in pitched]) for k in ("start", "end", "pitch"))
    assert S.tonic_at_end(on, end, p, s.key.tonic, edit.duration)
    m_on, m_end, m_p = _line(s, "melody")
    assert m_p[-1] % 12 == s.key.tonic and m_end[-1] >= edit.duration  # the melody holds the tonic
    inst = STYLES[style].melody
    assert inst.low <= m_p.min() and m_p.max() <= inst.high
    harmony = s.notes_of("harmony")
    for start, stop, pitch in zip(m_on, m_end, m_p):
        under = [h.pitch for h in harmony if h.start < stop - 0.05 and h.end > start + 0.05]  # heard together
        assert not under or pitch > max(under)


@pytest.mark.parametrize("style", list(STYLES))
def test_each_style_plays_its_instruments(edit, style):
    s = compose(edit, edit.duration, seed=2, style=style)
    spec = STYLES[style]
    programs = {p.name: p.program for p in s.parts}
    assert programs["melody"] == spec.melody.program and programs["harmony"] == spec.harmony.program
    assert programs["bass"] == spec.bass.program
    assert ("drums" in programs) == (spec.groove is not None)
    midi = mido.MidiFile(file=io.BytesIO(_midi_bytes(s)))
    tracks = {t.name: t for t in midi.tracks}
    assert {"melody", "harmony", "bass"} <= set(tracks)
    for name in ("melody", "harmony", "bass"):
        changes = [m.program for m in tracks[name] if m.type == "program_change"]
        assert changes == [programs[name]]
    b_p = _line(s, "bass")[2]
    assert spec.bass.low <= b_p.min() and b_p.max() <= spec.bass.high
    assert s.room == ROOMS[spec.room]
    if spec.harmony.swell and spec.harmony.program in (48, 49):  # strings and pads: a hall
        assert spec.room == "hall"


def _midi_bytes(score) -> bytes:
    buf = io.BytesIO()
    score.to_midi().save(file=buf)
    return buf.getvalue()


def test_seeds_change_the_groove_and_the_motif(edit):
    def pattern(s, part, bars=None):
        """(bar, position on a 16th grid, pitch) of a part; the drums' as a set of steps in the bar."""
        lines = _bar_lines(s)
        out = []
        for n in s.notes_of(part):
            bar = int(np.searchsorted(lines, n.start + 0.03, side="right")) - 1
            step = round(4 * (float(s.grid.position(n.start)) - float(s.grid.position(lines[max(bar, 0)]))))
            out.append((bar, step, n.pitch))
        if part == "drums":
            return {(step, pitch) for _, step, pitch in out}
        return sorted(o for o in out if o[0] < bars)

    busy = Controls.parse(video=["-1,-1,move,4"])  # busy enough for the kit to play its groove
    a, b = (compose(edit, edit.duration, busy, seed=k, style="drive") for k in (1, 2))
    assert pattern(a, "drums") != pattern(b, "drums")
    assert pattern(a, "melody", bars=3) != pattern(b, "melody", bars=3)


def test_style_option(capsys, edit, tmp_path):
    assert main(["generate", "--style", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in STYLES)
    with pytest.raises(V2MError, match="unknown style 'polka'"):
        compose(edit, edit.duration, style="polka")
    assert main(["generate", str(tmp_path / "none.mp4"), "--style", "polka"]) != 0
    err = capsys.readouterr().err
    assert "--style must be one of" in err and "Traceback" not in err


def test_a_long_cue_modulates_once_and_ends_in_the_new_key(one_shot):
    s = compose(one_shot, one_shot.duration, seed=0)
    assert len(s.key_changes) == 2 and s.info["final_key"] != s.info["key"]
    (t0, start), (t1, lifted) = s.key_changes
    assert t0 <= 0 < 0.6 * one_shot.duration <= t1 + 10 and lifted.tonic == (start.tonic + 2) % 12
    assert s.key == lifted
    pitched = [n for n in s.notes if not s.parts[n.part].is_drum]
    on, end, p = (np.array([getattr(n, k) for n in pitched]) for k in ("start", "end", "pitch"))
    assert S.tonic_at_end(on, end, p, lifted.tonic, one_shot.duration)
    late = {n.pitch % 12 for n in s.notes_of("bass") if n.start > t1 + 1}
    assert late <= set(lifted.scale) | {(lifted.tonic + 11) % 12}  # the bass plays in the new key
    midi = mido.MidiFile(file=io.BytesIO(_midi_bytes(s)))
    signatures = [m.key for m in midi.tracks[0] if m.type == "key_signature"]
    assert len(signatures) == 2 and signatures[0] != signatures[1]


def test_keys_go_round_the_whole_circle():
    """Colours from dark and cool to bright and warm reach all twelve tonics, major and minor."""
    import importlib

    composer = importlib.import_module("v2m.models.composer.compose")
    found = set()
    for b in np.linspace(0.05, 0.95, 19):
        for w in np.linspace(-0.3, 0.3, 7):
            for sat in (0.1, 0.3, 0.6):
                features = {"brightness": np.full(10, b), "saturation": np.full(10, sat),
                            "warmth": np.full(10, w), "motion": np.full(10, 0.1)}
                key = composer.choose_mood(features, Controls()).key
                found.add((key.tonic, key.mode))
    assert {t for t, m in found if m == "major"} == set(range(12))
    assert {t for t, m in found if m == "minor"} == set(range(12))


@pytest.mark.parametrize("mode", ["major", "minor"])
def test_every_key_writes_a_midi_key_signature(edit, mode):
    from v2m.theory import NOTE_NAMES, Key, parse_key

    for tonic in range(12):
        s = compose(edit, 8.0, Controls.parse(key=f"{NOTE_NAMES[tonic]} {mode}"), seed=0)
        midi = mido.MidiFile(file=io.BytesIO(_midi_bytes(s)))
        (signature,) = [m.key for m in midi.tracks[0] if m.type == "key_signature"]
        assert parse_key(signature) == s.key == Key(tonic, mode)


def test_no_diminished_triad_in_root_position_and_cadences_in_root_position():
    from v2m.models.composer.harmony import Chord, choose_basses, diminished
    from v2m.theory import Key

    for key in (Key(0, "major"), Key(9, "minor")):
        chords = [Chord(0.0, d, key.chord(d), key.chord(d)[0]) for d in (0, 6, 1, 4, 0, 1, 4, 0)]
        choose_basses(chords, key, cadence_goal={len(chords) - 1})
        for c in chords:
            if diminished(key, c.degree):
                assert c.bass_pc == c.tones[1]  # first inversion: the third in the bass
        assert chords[-1].bass_pc == key.tonic
        assert any(diminished(key, c.degree) for c in chords)  # the test has diminished chords to check


@pytest.mark.parametrize("style", list(STYLES))
def test_each_style_sounds_in_every_part_and_survives_mono(edit, style):
    from v2m.loudness import integrated_loudness, mono_loss
    from v2m.models.composer import find_soundfont

    s = compose(edit, 12.0, seed=2, style=style)
    stems = s.render_parts(find_soundfont())
    assert set(stems) == {p.name for p in s.parts}
    for name, audio in stems.items():
        if s.notes_of(name) and name != "drums":
            assert np.isfinite(integrated_loudness(audio, 44100)), name  # it plays
            assert mono_loss(audio, 44100) <= 3.0 + 0.05, name


@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    """40 s with cuts 1.5-3.5 s apart: too close together for whole beats alone to take them all."""
    rng = np.random.default_rng(5)
    cuts = [round(float(t) * 10) / 10 for t in np.cumsum(rng.uniform(1.5, 3.5, 20)) if t < 38.5]
    v = write_video(tmp_path_factory.mktemp("busy") / "busy.mp4", duration=40.0, fps=10, size=(64, 36),
                    cut_times=cuts, drift=0.4)
    return analyze_video(v.path)


def test_a_busy_edit_takes_its_cuts_with_bars_of_seven_or_five_eighths(busy):
    s = compose(busy, busy.duration, seed=0, style="drive")
    grid = s.grid
    assert grid.units is not None and (grid.beat_units == 0.5).any()
    cuts = np.asarray(busy.cut_times)
    on_beat = np.abs(cuts[:, None] - grid.times[None, :]).min(axis=1) <= 0.05
    assert on_beat.mean() >= 0.9
    midi = mido.MidiFile(file=io.BytesIO(_midi_bytes(s)))
    eighths = [m for m in midi.tracks[0] if m.type == "time_signature" and m.denominator == 8]
    assert eighths and all(m.numerator in (3, 5, 7) for m in eighths)
    # the drums stay on the 32nd-note grid (the rolls' rate), counted in beats across the eighths,
    # and every stroke of a bar of 7/8 or 5/8 falls inside it (none squeezed into the eighth)
    steps = np.array([float(grid.position(n.start)) * 8 for n in s.notes_of("drums")])
    assert np.abs(steps - np.round(steps)).max() < 0.3  # within the performance's few milliseconds
    ends = np.append(grid.bar_starts[1:], len(grid.times) - 1)
    for start, end, length in zip(grid.bar_starts, ends, grid.bar_lengths):
        if length != int(length):
            inside = [n for n in s.notes_of("drums") if grid.times[start] <= n.start < grid.times[end] - 0.01]
            spans = np.array([float(grid.position(n.start)) - grid.counts[start] for n in inside])
            assert len(spans) == 0 or spans.max() < length


def test_the_same_seed_gives_the_same_score_in_any_process(edit, tmp_path):
    """Nothing the composer draws depends on Python's per-process string hashing (set order)."""
    import subprocess
    import sys

    path = tmp_path / "edit.v2m.npz"
    edit.save(path)
    script = ("import sys; from v2m.analysis.timeline import Analysis; from v2m.models.composer import compose; "
              "a = Analysis.load(sys.argv[1]); s = compose(a, a.duration, seed=3, style='drive'); "
              "print([(round(n.start, 6), round(n.end, 6), n.pitch, n.velocity, n.part) for n in s.notes])")
    runs = [subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")]
    assert runs[0] == runs[1] and len(runs[0]) > 1000


def _onset_in_beat(score, notes):
    """Each note's place inside its beat (0-1), in the grid's beats."""
    pos = np.array([float(score.grid.position(n.start)) for n in notes])
    return pos - np.floor(pos)


def test_the_performance(edit):
    busy = Controls.parse(video=["-1,-1,move,4"])
    lofi = compose(edit, edit.duration, busy, seed=2, style="lofi")
    offbeats = _onset_in_beat(lofi, lofi.notes_of("harmony"))
    swung = offbeats[(offbeats > 0.3) & (offbeats < 0.8)]
    assert len(swung) and abs(np.median(swung) - 0.6) < 0.05  # swung eighths, not straight ones

    drive = compose(edit, edit.duration, busy, seed=2, style="drive")
    beat = 60.0 / drive.grid.bpm

    def lag(part):  # seconds behind the nearest beat, for notes near one
        starts = np.array([n.start for n in drive.notes_of(part)])
        d = starts - drive.grid.times[np.abs(starts[:, None] - drive.grid.times[None, :]).argmin(axis=1)]
        return float(np.median(d[np.abs(d) < 0.1 * beat]))

    assert 0.006 < lag("bass") - lag("harmony") < 0.015  # the bass sits about 10 ms behind
    melody = sorted(drive.notes_of("melody"), key=lambda n: n.start)
    offsets = [n.start - drive.grid.times[np.argmin(np.abs(drive.grid.times - n.start))] for n in melody]
    assert 0.002 < np.std([o for o in offsets if abs(o) < 0.03]) < 0.02  # micro-timing of a few ms
    # velocities rise and fall over a phrase rather than sitting on one value
    assert np.std([n.velocity for n in melody]) > 5

    piano = compose(edit, edit.duration, seed=2, style="ambient-piano")
    pedal = [c for c in piano.controls if c.number == 64]
    assert pedal and {c.value for c in pedal} == {0, 127}
    assert {piano.parts[c.part].name for c in pedal} == {"melody", "bass"}  # the piano's hands
    strings = compose(edit, edit.duration, seed=2, style="cinematic-strings")
    swells = [c for c in strings.controls if c.number == 11]
    assert {strings.parts[c.part].name for c in swells} >= {"harmony", "melody"} and len({c.value for c in swells}) > 3
    violins = sorted(strings.notes_of("melody"), key=lambda n: n.start)
    overlaps = [a.end - b.start for a, b in zip(violins, violins[1:]) if b.start - a.start < 2.0]
    assert np.mean([o > 0 for o in overlaps]) > 0.5  # legato: a note holds into the next


def test_fills_and_risers_before_a_new_section(edit):
    from v2m.models.composer import parts as P

    s = compose(edit, edit.duration, Controls.parse(video=["-1,-1,move,4"]), seed=2, style="drive")
    drums = sorted(s.notes_of("drums"), key=lambda n: n.start)
    toms = [n for n in drums if n.pitch in (P.HIGH_TOM, P.MID_TOM, P.LOW_TOM, P.FLOOR_TOM)]
    assert toms  # a fill
    starts = [a for _, a, _ in s.sections[1:]]
    assert starts
    for start in starts:  # the bar before a new section ends with a fill or a roll into it
        before = [n for n in drums if start - 1.2 < n.start < start - 0.02]
        assert any(n.pitch in (P.SNARE, P.HIGH_TOM, P.MID_TOM, P.LOW_TOM, P.FLOOR_TOM) for n in before)
    rolls = [n for n in drums if n.pitch == P.SNARE]
    runs, run = [], [rolls[0]]
    for a, b in zip(rolls, rolls[1:]):  # snare strokes an eighth of a beat apart
        if b.start - a.start < 0.2 * 60.0 / s.grid.bpm:
            run.append(b)
        else:
            runs.append(run)
            run = [b]
    runs.append(run)
    riser = max(runs, key=len)
    assert len(riser) >= 8 and riser[-1].velocity > riser[0].velocity + 20  # a roll that rises


SPEECH = (12.0, 22.0)  # an interview answer over the edit's middle


def _starting(score, lo, hi, parts=None):
    return [n for n in score.notes if lo <= n.start < hi and (parts is None or score.parts[n.part].name in parts)]


def _far_from(score, span, margin=3.0):
    """The notes starting more than ``margin`` seconds from ``span``, comparable between scores."""
    return sorted((round(n.start, 6), round(n.end, 6), n.pitch, n.velocity, n.part) for n in score.notes
                  if n.start < span[0] - margin or n.start > span[1] + margin)


@pytest.mark.parametrize("style", list(STYLES))
def test_the_arrangement_thins_under_speech(edit, style):
    """Under speech: no melody, far fewer and softer notes, only downbeat kicks; away from it the
    same score as without speech."""
    plain = compose(edit, edit.duration, seed=2, style=style)
    spoken = compose(edit, edit.duration, seed=2, style=style, speech=[SPEECH])
    lo, hi = SPEECH[0] - 0.3, SPEECH[1] + 0.5
    assert _starting(plain, lo, hi, {"melody"}) and not _starting(spoken, lo, hi, {"melody", "sparkle", "counter"})
    assert not [n for n in spoken.notes_of("melody") if n.start < lo and n.end > lo + 0.01]  # none rings in
    before, after = _starting(plain, *SPEECH), _starting(spoken, *SPEECH)
    assert len(after) <= 0.6 * len(before), (len(before), len(after))
    assert np.mean([n.velocity for n in after]) < np.mean([n.velocity for n in before]) - 5
    drums = _starting(spoken, SPEECH[0] - 1.0, hi, {"drums"})
    downbeats = _bar_lines(spoken)
    assert all(n.pitch in (35, 36) and np.min(np.abs(downbeats - n.start)) < 0.06 for n in drums)
    # the harmony holds its chords: at most one onset per pitch per chord, no faster than a beat
    harmony = sorted(_starting(spoken, *SPEECH, {"harmony"}), key=lambda n: n.start)
    onsets = np.unique(np.round([n.start for n in harmony], 3))
    assert len(onsets) == 0 or np.diff(onsets).min(initial=9.0) >= 0.9 * 60 / spoken.grid.bpm
    assert _far_from(spoken, SPEECH) == _far_from(plain, SPEECH)


def test_no_speech_is_the_score_as_before_and_speech_is_deterministic(edit):
    assert _midi_bytes(compose(edit, edit.duration, seed=4, speech=())) == _midi_bytes(compose(edit, edit.duration, seed=4))
    a, b = (compose(edit, edit.duration, seed=4, speech=[(5.0, 9.0), SPEECH]) for _ in range(2))
    assert _midi_bytes(a) == _midi_bytes(b)


def test_the_composer_reads_speech_from_the_request(edit):
    from v2m.models import get_generator
    from v2m.models.base import GenerationRequest

    composer = get_generator("composer")
    score = composer.score(GenerationRequest(edit, edit.duration, seed=2, speech=(SPEECH,)))
    assert score.notes_of("melody") and not _starting(score, *SPEECH, {"melody"})
