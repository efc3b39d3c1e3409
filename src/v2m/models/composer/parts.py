"""The accompaniment: the harmony part's figure, the bass line, the counter line and the drums.

Every function writes :class:`Event` s for one bar from the bar's plan (:class:`.plan.Bar`), its
chords and the style; times are in beats from the bar's downbeat, so :mod:`.compose` places them
on the grid and :mod:`.perform` shapes them afterwards.

- **Harmony figures**: ``sustain`` (held, re-struck each half bar when the energy is up),
  ``pulse`` (repeated chords, quarter or eighth notes), ``arpeggio`` (a broken chord), ``strum``
  (a guitar's down-up pattern), ``comp`` (a syncopated jazz comp).
- **Bass figures**: ``long``, ``root_fifth``, ``walking``, ``eighths``, ``offbeat``; at low energy
  every figure falls back to long notes. Octaves are chosen near the note before (no leaps of a
  seventh when the root wraps); a passing note fills a third before a chord change and an
  approach note leads into the next chord.
- **Drums**: grooves per style family on a 16-step bar (variants picked by the seed), ghost
  notes, a fill at the end of a section, a roll rising into a cut that matters, and cymbals only
  on those cuts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...theory import Key
from .harmony import Chord, voice
from .plan import Bar
from .styles import Instrument, Style

KICK, BASS_DRUM, SIDE_STICK, SNARE, CLAP, HAT, PEDAL_HAT, OPEN_HAT = 36, 35, 37, 38, 39, 42, 44, 46
CRASH, RIDE, TAMBOURINE, SHAKER, LOW_TOM, MID_TOM, HIGH_TOM, FLOOR_TOM = 49, 51, 54, 70, 45, 47, 50, 41


@dataclass
class Event:
    pos: float  # beats from the bar's downbeat
    length: float  # beats
    pitch: int
    velocity: float  # before the performance shaping, 0..127
    hit: bool = False  # marks a cut: the performance leaves its timing alone


def chord_spans(chords: list[Chord], n_beats: float) -> list[tuple[Chord, float, float]]:
    """Each chord of a bar with its start and end in beats."""
    out = []
    for i, c in enumerate(chords):
        end = chords[i + 1].start if i + 1 < len(chords) else float(n_beats)
        out.append((c, c.start, end))
    return out


# --- harmony ----------------------------------------------------------------------------------


def harmony_bar(style: Style, bar: Bar, chords: list[Chord], previous: list[int] | None, top: int,
                base_velocity: float, rng: np.random.Generator) -> tuple[list[Event], list[int]]:
    """The harmony part for one bar, voiced below ``top`` (the melody's floor); returns the
    events and the last voicing (for the next bar's voice leading)."""
    inst = style.harmony
    events: list[Event] = []
    figure = style.harmony_figure
    if bar.layers == 0 and figure in ("pulse", "comp", "strum"):
        figure = "sustain"
    v = previous
    for chord, a, z in chord_spans(chords, bar.n_beats):
        v = voice(chord.tones, v, inst.low, max(inst.low + 7, min(inst.high, top)), rng)
        if figure == "sustain":
            step = (z - a) / 2 if bar.layers >= 2 and z - a >= 2 else z - a
            t = a
            while t < z - 1e-6:
                events += [Event(t, step, p, base_velocity - 10) for p in v]
                t += step
        elif figure == "pulse":
            step = 0.5 if bar.energy >= 0.6 else 1.0
            t = a
            while t < z - 1e-6:
                accent = 6 if abs(t - round(t)) < 1e-6 and int(round(t)) % 2 == 0 else 0
                events += [Event(t, step * 0.8, p, base_velocity - 14 + accent) for p in v]
                t += step
        elif figure == "arpeggio":
            events += arpeggio(v, a, z, 0.5 if bar.energy >= 0.3 else 1.0, base_velocity - 12, rng)
        elif figure == "strum":
            pattern = [(0.0, 1.0, 0), (1.0, 0.5, 0), (1.5, 0.5, 1), (2.5, 0.5, 1), (3.0, 0.5, 0), (3.5, 0.5, 1)]
            if bar.energy < 0.4:
                pattern = [(0.0, 2.0, 0), (2.0, 1.0, 0), (3.0, 1.0, 1)]
            for pos, length, up in pattern:
                if a - 1e-6 <= pos < z - 1e-6:
                    notes = v[::-1] if up else v
                    for k, p in enumerate(notes):
                        # a strum: each string a little later (the performance keeps the order)
                        events.append(Event(pos + 0.02 * k, min(length, z - pos) - 0.02 * k, p,
                                            base_velocity - (20 if up else 10)))
        elif figure == "comp":
            for pos, length in ((0.0, 1.2), (1.5, 0.9), (3.0, 0.7)) if bar.energy >= 0.3 else ((0.0, 2.5),):
                if a - 1e-6 <= pos < z - 1e-6:
                    events += [Event(pos, min(length, z - pos), p, base_velocity - 14) for p in v]
    return events, v or []


def arpeggio(voicing: list[int], a: float, z: float, step: float, velocity: float,
             rng: np.random.Generator) -> list[Event]:
    """A broken chord over ``[a, z)``: up, or up and down, in notes of ``step`` beats."""
    tones = sorted(voicing) + [sorted(voicing)[0] + 12]
    order = tones + tones[-2:0:-1] if rng.random() < 0.5 else tones
    out, t, k = [], a, 0
    while t < z - 1e-6:
        out.append(Event(t, step * 1.5, order[k % len(order)], velocity + (6 if k == 0 else 0)))
        t += step
        k += 1
    return out


# --- bass -------------------------------------------------------------------------------------


def _octave_near(pc: int, previous: int | None, inst: Instrument, register: int = 0) -> int:
    centre = previous if previous is not None else (inst.low + inst.high) // 2 - 4 + register
    options = [p for p in range(inst.low, inst.high + 1) if p % 12 == pc]
    return min(options, key=lambda p: abs(p - centre)) if options else inst.low + (pc - inst.low) % 12


def bass_bar(style: Style, bar: Bar, chords: list[Chord], next_bass_pc: int | None, key: Key,
             previous: int | None, base_velocity: float, register: int = 0) -> tuple[list[Event], int | None]:
    """The bass for one bar; ``next_bass_pc`` is the next bar's first bass note (for approach and
    passing notes). Returns the events and the last pitch."""
    inst = style.bass
    figure = style.bass_figure if bar.layers >= 1 else "long"
    out: list[Event] = []
    spans = chord_spans(chords, bar.n_beats)
    for i, (chord, a, z) in enumerate(spans):
        root = _octave_near(chord.bass_pc, previous, inst, register)
        following = spans[i + 1][0].bass_pc if i + 1 < len(spans) else next_bass_pc
        length = z - a
        if figure == "long" or length < 1.0:
            target = _octave_near(following, root, inst) if following is not None else None
            third = target is not None and length >= 2 and 3 <= abs(target - root) <= 4
            passing = _lead_in(key, root, target, inst) if third else None
            if passing is not None:  # a third to the next chord's bass: a passing note on the last beat
                out += [Event(a, length - 1.0, root, base_velocity), Event(z - 1.0, 1.0, passing, base_velocity - 8)]
                previous = passing
            else:
                out.append(Event(a, length, root, base_velocity))
                previous = root
            continue
        fifth = _octave_near(chord.tones[2] if len(chord.tones) > 2 else chord.tones[-1], root, inst)
        if fifth == root:
            fifth = root + 7 if root + 7 <= inst.high else root - 5 if root - 5 >= inst.low else root
        if figure == "root_fifth":
            cells = [(a, 2.0, root), (a + 2.0, 2.0, fifth)] if length >= 4 else [(a, length, root)]
        elif figure == "walking":
            tones = [root, _octave_near(chord.tones[1] if len(chord.tones) > 1 else chord.tones[0], root, inst),
                     fifth, root + 12 if root + 12 <= inst.high else fifth]
            cells = [(a + k, 1.0, tones[k % len(tones)]) for k in range(int(length))]
        elif figure == "eighths":  # root, octave and fifth, a sixth that leans on the fifth
            sixth = _octave_near(key.scale[(chord.degree + 5) % 7], fifth, inst)  # diatonic
            octave = root + 12 if root + 12 <= inst.high else root - 12 if root - 12 >= inst.low else fifth
            figure8 = [root, root, octave, root, fifth, sixth, fifth, octave]
            cells = [(a + 0.5 * k, 0.45, figure8[k % 8]) for k in range(int(2 * length))]
        else:  # offbeat: the downbeat, then the off-beats climbing root, octave, fifth, sixth
            octave = root + 12 if root + 12 <= inst.high else fifth
            sixth = _octave_near(key.scale[(chord.degree + 5) % 7], fifth, inst)
            climb = [root, octave, fifth, sixth]
            cells = [(a, 0.45, root)] + [(a + k + 0.5, 0.4, climb[k % 4]) for k in range(int(length))]
        for pos, dur, p in cells:
            if pos < z - 1e-6:
                out.append(Event(pos, min(dur, z - pos), p, base_velocity - (0 if abs(pos - round(pos)) < 1e-6 else 8)))
        previous = cells[-1][2]
        if following is not None and length >= 2:
            target = _octave_near(following, previous, inst)
            lead = _lead_in(key, previous, target, inst)
            if lead is not None:  # a passing or approach note on the chord's last beat
                last = out[-1]
                cut_at = z - 1.0 if figure != "eighths" else z - 0.5
                out = [e for e in out if e.pos < cut_at - 1e-6]
                if out and out[-1].pos + out[-1].length > cut_at:
                    out[-1].length = cut_at - out[-1].pos
                out.append(Event(cut_at, z - cut_at, lead, last.velocity - 6))
                previous = lead
    return out, previous


def _lead_in(key: Key, current: int, target: int, inst: Instrument) -> int | None:
    """A note between ``current`` and ``target`` (a passing tone when they are a third or fourth
    apart), or a scale step next to ``target`` from the side it is approached from."""
    scale = set(key.scale)
    gap = target - current
    if gap == 0:
        return None
    if 3 <= abs(gap) <= 5:
        between = [p for p in range(min(current, target) + 1, max(current, target)) if p % 12 in scale]
        if between:
            return between[len(between) // 2]
    direction = 1 if gap > 0 else -1
    for d in (1, 2):
        p = target - direction * d
        if p % 12 in scale and inst.low <= p <= inst.high and p != current:
            return p
    return None


# --- counter line -----------------------------------------------------------------------------


def counter_bar(style: Style, bar: Bar, chords: list[Chord], melody_pitches: list[int], base_velocity: float,
                rng: np.random.Generator) -> list[Event]:
    inst = style.counter
    if inst is None:
        return []
    out: list[Event] = []
    for chord, a, z in chord_spans(chords, bar.n_beats):
        v = voice(chord.tones[:3], None, inst.low, inst.high)  # each chord in the middle of the range
        if style.counter_figure == "arpeggio":
            out += arpeggio(v, a, z, 0.5 if bar.energy < 0.75 else 0.25, base_velocity - 18, rng)
        else:  # a slow counter line: one chord tone per half bar, away from the melody's direction
            step = 2.0 if z - a >= 2 else z - a
            t = a
            while t < z - 1e-6:
                target = v[int(rng.integers(len(v)))]
                if melody_pitches and abs(target - melody_pitches[0]) < 3:
                    target = v[0]
                out.append(Event(t, step, target, base_velocity - 12))
                t += step
    return out


# --- drums ------------------------------------------------------------------------------------

# Per family, variants of one 4/4 bar on 16 steps: voice -> (steps, velocity).
GROOVES: dict[str, list[dict[int, tuple[tuple[int, ...], float]]]] = {
    "rock": [
        {KICK: ((0, 8, 10), 96), SNARE: ((4, 12), 92), HAT: ((0, 2, 4, 6, 8, 10, 12, 14), 70)},
        {KICK: ((0, 6, 8), 96), SNARE: ((4, 12), 92), HAT: ((0, 2, 4, 6, 8, 10, 12, 14), 70)},
        {KICK: ((0, 3, 8, 11), 94), SNARE: ((4, 12), 92), HAT: ((0, 2, 4, 6, 8, 10, 12, 14), 68),
         OPEN_HAT: ((14,), 64)},
    ],
    "four_floor": [
        {KICK: ((0, 4, 8, 12), 100), CLAP: ((4, 12), 84), OPEN_HAT: ((2, 6, 10, 14), 66)},
        {KICK: ((0, 4, 8, 12), 100), CLAP: ((4, 12), 84), HAT: ((2, 6, 10, 14), 70), SHAKER: ((1, 3, 5, 7, 9, 11, 13, 15), 44)},
        {KICK: ((0, 4, 8, 12), 100), SNARE: ((4, 12), 78), OPEN_HAT: ((2, 6, 10, 14), 62), HAT: ((0, 8), 50)},
    ],
    "boom_bap": [
        {KICK: ((0, 7, 10), 92), SNARE: ((4, 12), 88), HAT: ((0, 2, 4, 6, 8, 10, 12, 14), 58)},
        {KICK: ((0, 3, 10), 92), SNARE: ((4, 12), 88), HAT: ((0, 2, 4, 6, 8, 10, 12, 14), 58)},
        {KICK: ((0, 8, 9), 90), SNARE: ((4, 12), 88), HAT: ((0, 2, 4, 6, 8, 10, 12, 14), 56), OPEN_HAT: ((6,), 50)},
    ],
    "light": [
        {KICK: ((0, 8), 74), SIDE_STICK: ((4, 12), 70), SHAKER: ((0, 2, 4, 6, 8, 10, 12, 14), 50)},
        {KICK: ((0, 10), 74), SIDE_STICK: ((4, 12), 70), SHAKER: ((0, 2, 4, 6, 8, 10, 12, 14), 50),
         TAMBOURINE: ((12,), 54)},
        {KICK: ((0, 6, 8), 72), SIDE_STICK: ((4, 12), 68), HAT: ((0, 2, 4, 6, 8, 10, 12, 14), 52)},
    ],
    "orchestral": [
        {BASS_DRUM: ((0,), 84)},
        {BASS_DRUM: ((0, 8), 80)},
    ],
}
GHOSTS = {"rock": (SNARE, (7, 15), 34), "boom_bap": (SNARE, (7, 11, 15), 30), "light": (SIDE_STICK, (14,), 36)}


@dataclass(frozen=True)
class Groove:
    """A section's groove: a variant of its family, with the seed's extra kicks and open hat."""
    variant: int
    kicks: tuple[int, ...] = ()
    open_hat: int | None = None


def choose_groove(rng: np.random.Generator) -> Groove:
    extra = tuple(int(k) for k in rng.choice([3, 6, 11, 14], size=int(rng.integers(0, 3)), replace=False))
    return Groove(int(rng.integers(8)), extra, int(rng.choice([6, 14])) if rng.random() < 0.5 else None)


def drum_bar(family: str | None, groove_choice: Groove, bar: Bar, base_velocity: float, fill: bool, riser: bool,
             cymbal_scale: float) -> list[Event]:
    """The drums of one bar: the groove (trimmed to a 2/4 or 3/4 bar), ghost notes, a fill on the
    last beat(s) before a new section, a roll into the cut that opens the next bar."""
    if family is None:
        return []
    out: list[Event] = []
    steps = int(round(4 * bar.n_beats))  # sixteenths: 14 in a bar of 7/8
    if bar.layers >= 2:
        groove = dict(GROOVES[family][groove_choice.variant % len(GROOVES[family])])
        if family != "orchestral":
            kick = KICK if KICK in groove else BASS_DRUM
            where, vel = groove.get(kick, ((), 90))
            groove[kick] = (tuple(sorted(set(where) | set(groove_choice.kicks))), vel)
            if groove_choice.open_hat is not None and bar.energy >= 0.5:
                groove[OPEN_HAT] = (tuple(sorted(set(groove.get(OPEN_HAT, ((), 60))[0]) | {groove_choice.open_hat})),
                                    groove.get(OPEN_HAT, ((), 60))[1])
        fill_from = steps - (8 if bar.energy >= 0.6 else 4) if fill and family != "orchestral" else steps
        for pitch, (where, vel) in groove.items():
            scale = cymbal_scale if pitch in (HAT, OPEN_HAT, RIDE, SHAKER, TAMBOURINE) else 1.0
            for s in where:
                if s < min(steps, fill_from):
                    accent = 6 if s % 4 == 0 else 0
                    out.append(Event(s / 4, 0.25, pitch, min(127, (vel + accent) * scale * base_velocity / 90)))
        if family in GHOSTS and bar.energy >= 0.4:
            pitch, where, vel = GHOSTS[family]
            out += [Event(s / 4, 0.1, pitch, vel) for s in where if s < min(steps, fill_from)]
        if fill_from < steps:
            toms = (HIGH_TOM, HIGH_TOM, MID_TOM, MID_TOM, LOW_TOM, LOW_TOM, FLOOR_TOM, FLOOR_TOM)
            for k, s in enumerate(range(fill_from, steps)):
                pitch = SNARE if family in ("four_floor",) else toms[int(k * len(toms) / (steps - fill_from))]
                out.append(Event(s / 4, 0.25, pitch, min(127, base_velocity * (0.7 + 0.4 * k / (steps - fill_from)))))
    if riser:  # a roll rising into the next downbeat: snare (band) or suspended cymbal (orchestra)
        pitch = RIDE if family in ("orchestral",) else SNARE
        rate = 8 if pitch == SNARE else 6
        span = min(2, bar.n_beats)
        n = int(round(rate * span))
        out = [e for e in out if e.pos < bar.n_beats - span - 1e-6 or e.pitch not in (SNARE, RIDE)]
        for k in range(n):
            out.append(Event(bar.n_beats - span + k / rate, 1 / rate, pitch, 30 + 70 * (k + 1) / n))
    return out
