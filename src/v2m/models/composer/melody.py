"""The melody: phrases built from a motif, on the harmony, inside the instrument's range.

A **motif** is one bar: a rhythm (the onset pattern of each beat, drawn from the folk tunes'
beat patterns, as dense as the energy asks) and a contour (diatonic steps drawn from the folk
tunes' step model, which knows the step before and where the note falls in the bar). Each
section label has its motif; a primed label (``A'``) develops its source's motif.

A **phrase** of four bars states the motif, repeats it as a sequence on the next chord, develops
it (inversion, sequence or a new rhythm, by the seed) and ends on a cadence: a long note on the
degree the folk tunes end their 4th bars on (a half cadence: a tone of V) or their 8th bars on
(a full cadence: a tone of I); the cue's last phrase ends on the tonic. A consequent phrase
(the second of a period) begins as its antecedent did and ends differently.

**Pitches**: notes on strong beats are chord tones; elsewhere a note belongs to the chord as
often as the folk tunes' notes do at that metric position (the learned share), else it is the
step itself (a passing or neighbour tone). The line never repeats a pitch more than once in a
row; at the edges of the instrument's comfortable range a step is reflected, never clamped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...theory import Key
from .harmony import Chord
from .plan import Bar
from .styles import Instrument

METRIC_STRONG, METRIC_BEAT, METRIC_OFF = "strong", "beat", "off"
REGISTER_SLACK = 5  # semitones at each end of the range kept for a shot's register (3 scale steps)


@dataclass
class Motif:
    rhythm: list[list[float]]  # per beat, the onsets inside it (fractions of the beat)
    steps: list[int]  # one diatonic step per onset


@dataclass
class MelodyNote:
    bar: int
    pos: float  # beats from the bar's downbeat
    length: float  # beats
    pitch: int
    accent: float  # 0..1: the downbeat, the phrase's peak, the cadence


def _sample(rng: np.random.Generator, probs) -> int:
    p = np.asarray(probs, np.float64)
    return int(rng.choice(len(p), p=p / p.sum()))


def metric(pos: float, n_beats: float) -> str:
    if abs(pos - round(pos)) > 1e-6:
        return METRIC_OFF
    beat = int(round(pos))
    return METRIC_STRONG if beat == 0 or (n_beats == 4 and beat == 2) else METRIC_BEAT


def make_motif(rng: np.random.Generator, stats: dict, energy: float, density: float, beats: int = 4) -> Motif:
    """A one-bar motif whose busiest beat has at most as many onsets as the energy allows."""
    patterns = {int(k): v for k, v in stats["rhythm"]["beat_pattern"].items()}
    most = int(np.clip(round((1 + 2.5 * energy) * density), 1, 4))
    allowed = {p: n for p, n in patterns.items() if bin(p).count("1") <= most}
    keys = list(allowed)
    weights = np.array([allowed[k] for k in keys], np.float64)
    if energy < 0.35:  # calm: more held beats (pattern 0 continues the note before)
        weights = weights * np.array([3.0 if k == 0 else 1.0 for k in keys])
    rhythm: list[list[float]] = []
    for beat in range(beats):
        p = keys[_sample(rng, weights)]
        if beat == 0:
            p |= 1  # a motif starts on its downbeat
        rhythm.append([slot / 4.0 for slot in range(4) if p & (1 << slot)])
    steps_model = stats["melody"].get("step_given_previous_and_metric")
    values = stats["melody"]["steps"]
    steps, last = [], 0
    for beat, onsets in enumerate(rhythm):
        for frac in onsets:
            context = "down" if last < 0 else "up" if last > 0 else "same"
            if steps_model:
                probs = np.array(steps_model[f"{context}/{metric(beat + frac, beats)}"], np.float64)
            else:
                probs = np.array(stats["melody"]["step_given_previous"][context], np.float64)
            probs[values.index(0)] *= 0.3  # repeated notes are the chord-tone rule's business
            last = values[_sample(rng, probs)]
            steps.append(last)
    return Motif(rhythm, steps)


def vary_rhythm(rng: np.random.Generator, motif: Motif, stats: dict, energy: float, density: float) -> Motif:
    """The motif with one beat's rhythm drawn again (its steps kept where the onsets still are)."""
    fresh = make_motif(rng, stats, energy, density, len(motif.rhythm))
    beat = int(rng.integers(1, len(motif.rhythm))) if len(motif.rhythm) > 1 else 0
    rhythm = [list(r) for r in motif.rhythm]
    rhythm[beat] = fresh.rhythm[beat]
    n = sum(len(r) for r in rhythm)
    steps = (motif.steps + fresh.steps)[:n]
    return Motif(rhythm, steps)


def inverted(motif: Motif) -> Motif:
    return Motif(motif.rhythm, [-s for s in motif.steps])


class Line:
    """The melody's state while it is written: its degree, its range in degrees, its last step."""

    def __init__(self, key: Key, instrument: Instrument, stats: dict, rng: np.random.Generator):
        self.key, self.rng = key, rng
        self.low_pitch, self.high_pitch = instrument.low, instrument.high
        self.chord_share = stats["melody"].get("chord_tone_given_metric", {"strong": 0.9, "beat": 0.75, "off": 0.5})
        self.degree: int | None = None
        self.last_step = 0
        self.run = 1

    def pitch(self, degree: int) -> int:
        return self.key.degree_pitch(degree, 60)

    def bounds(self) -> tuple[int, int]:
        """The degrees inside the instrument's range less ``REGISTER_SLACK`` at both ends: the
        room a shot's colour may later move the line by (:func:`.compose.shift_registers`)."""
        low, high = self.low_pitch + REGISTER_SLACK, self.high_pitch - REGISTER_SLACK
        degrees = [d for d in range(-21, 35) if low <= self.pitch(d) <= high]
        return degrees[0], degrees[-1]

    def start(self, chord: Chord) -> None:
        """Begin on a chord tone between where the line is and the middle of its range."""
        lo, hi = self.bounds()
        centre = (lo + hi) // 2
        target = centre if self.degree is None else int(round(0.5 * (self.degree + centre)))
        self.degree = self.nearest_chord_degree(chord, target, lo, hi, avoid=None)

    def nearest_chord_degree(self, chord: Chord, target: int, lo: int, hi: int, avoid: int | None,
                             direction: int = 0) -> int:
        tones = set(chord.tones)
        options = [d for d in range(lo, hi + 1) if self.key.scale[d % 7] in tones]
        options = [d for d in options if d != avoid] or options or [target]

        def cost(d: int) -> float:
            against = 0.5 if direction and np.sign(d - target) == -direction else 0.0
            return abs(d - target) + against

        return min(options, key=cost)

    def step(self, step: int, chord: Chord, where: str, goal: int | None = None) -> int:
        """Move by ``step`` degrees (reflected at the range's edges); on chord tones where the
        metric position asks; never a third note on one pitch."""
        lo, hi = self.bounds()
        d = self.degree if self.degree is not None else (lo + hi) // 2
        new = d + step
        if new > hi:
            new = max(lo, 2 * hi - new)
        if new < lo:
            new = min(hi, 2 * lo - new)
        if goal is not None:
            new = self.nearest_chord_degree(Chord(0, 0, [self.key.scale[goal % 7]], 0), new, lo, hi, avoid=None)
        elif where == METRIC_STRONG or self.rng.random() < self.chord_share.get(where, 0.5):
            new = self.nearest_chord_degree(chord, new, lo, hi, avoid=d if self.run >= 2 else None,
                                            direction=int(np.sign(step)))
        if self.key.mode == "minor" and new % 7 == 6 and (self.key.tonic + 11) % 12 in chord.tones:
            new = new + 1 if new + 1 <= hi else new - 1  # the natural seventh against V's raised one
        if new == d and goal is None:
            if self.run >= 2 or self.rng.random() < 0.7:  # the folk tunes repeat 1 note in 13
                bump = -int(np.sign(self.last_step)) or (1 if self.rng.random() < 0.5 else -1)
                new = d + bump if lo <= d + bump <= hi else d - bump
            self.run = self.run + 1 if new == d else 1
        else:
            self.run = 1
        self.last_step = new - d if new != d else self.last_step
        self.degree = new
        return new


def write_phrase(line: Line, bars: list[Bar], chords: list[list[Chord]], motif: Motif, stats: dict,
                 rng: np.random.Generator, development: str, opening: list | None,
                 energy: float, density: float) -> tuple[list[MelodyNote], list]:
    """The notes of one phrase (see the module docstring). ``opening`` is the antecedent's first
    two bars (to begin a consequent with); returns the notes and this phrase's opening."""
    notes: list[MelodyNote] = []
    n = len(bars)
    line.key = bars[0].key or line.key
    line.start(chords[0][0])
    made_opening = []
    variation = vary_rhythm(rng, motif, stats, energy, density)
    for k, (bar, bar_chords) in enumerate(zip(bars, chords)):
        line.key = bar.key or line.key  # a modulation: the line's degrees now count in the new key
        if k == n - 1 and bar.cadence:
            notes += _cadence_bar(line, bar, bar_chords, stats, rng)
            continue
        if opening is not None and k < len(opening) and opening[k][0] == bar.n_beats:
            pitches, rhythm = opening[k][1], opening[k][2]
            for (pos, length), pitch in zip(rhythm, pitches):
                notes.append(MelodyNote(bar.index, pos, length, pitch, 1.0 if pos == 0 else 0.0))
            line.degree = _degree_of(line, pitches[-1])
            made_opening.append(opening[k])
            continue
        use = motif if k == 0 else variation if k == 1 else (inverted(motif) if development == "inversion" else
                                                              vary_rhythm(rng, motif, stats, energy, density)
                                                              if development == "rhythm" else motif)
        if k >= 1 and development != "inversion":  # a sequence: the motif again from the new chord
            line.start(bar_chords[0])
        bar_notes = _motif_bar(line, bar, bar_chords, use)
        notes += bar_notes
        if k < 2:
            made_opening.append((bar.n_beats, [m.pitch for m in bar_notes], [(m.pos, m.length) for m in bar_notes]))
    return notes, made_opening


def _degree_of(line: Line, pitch: int) -> int:
    lo, hi = line.bounds()
    return min(range(lo, hi + 1), key=lambda d: abs(line.pitch(d) - pitch))


def _chord_at(chords: list[Chord], pos: float) -> Chord:
    current = chords[0]
    for c in chords:
        if c.start <= pos + 1e-9:
            current = c
    return current


def _motif_bar(line: Line, bar: Bar, chords: list[Chord], motif: Motif) -> list[MelodyNote]:
    onsets = [beat + frac for beat, fracs in enumerate(motif.rhythm) for frac in fracs if beat + frac < bar.n_beats]
    steps = motif.steps[: len(onsets)]
    out: list[MelodyNote] = []
    for j, (pos, step) in enumerate(zip(onsets, steps)):
        nxt = onsets[j + 1] if j + 1 < len(onsets) else bar.n_beats
        chord = _chord_at(chords, pos)
        if j == 0:
            line.start(chord)
            degree = line.degree
        else:
            degree = line.step(step, chord, metric(pos, bar.n_beats))
        out.append(MelodyNote(bar.index, pos, min(nxt - pos, 2.0), line.pitch(degree),
                              1.0 if pos == 0 else 0.3 if metric(pos, bar.n_beats) == METRIC_STRONG else 0.0))
    return out


def _cadence_bar(line: Line, bar: Bar, chords: list[Chord], stats: dict, rng: np.random.Generator) -> list[MelodyNote]:
    """A cadence: an approach on the downbeat, then the goal held to the bar's end (the final
    cadence: the tonic from the downbeat)."""
    ends = stats["melody"].get("phrase_end_degree", {})
    chord = chords[-1]
    goal_tones = [d for d in range(7) if line.key.scale[d] in chord.tones] or [0]
    if bar.cadence == "final":
        goal = 0
    else:
        probs = np.array(ends.get("full" if bar.cadence == "full" else "half", [1.0] * 7), np.float64)
        mask = np.array([1.0 if d in goal_tones else 0.02 for d in range(7)])
        goal = _sample(rng, probs * mask)
    if bar.cadence == "final" or bar.n_beats < 3:
        degree = line.step(0, chord, METRIC_STRONG, goal=goal)
        return [MelodyNote(bar.index, 0.0, float(bar.n_beats), line.pitch(degree), 1.0)]
    approach = line.step(int(rng.choice([-1, 1, 2, -2])), chords[0], METRIC_STRONG)
    first = MelodyNote(bar.index, 0.0, 1.0, line.pitch(approach), 0.8)
    degree = line.step(0, chord, METRIC_STRONG, goal=goal)
    if line.pitch(degree) == first.pitch:
        first.length = float(bar.n_beats)
        return [first]
    return [first, MelodyNote(bar.index, 1.0, bar.n_beats - 1.0, line.pitch(degree), 0.6)]
