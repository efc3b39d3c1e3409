"""Harmony: the chord of every bar (or half bar), the bass note under it, and the harmony part's
voicing.

- **Progressions** are written phrase by phrase (:mod:`.plan` gives each bar its place in a
  4-bar phrase and its cadence). Inside a phrase the chords follow the scale-degree transitions
  learned from Bach chorales; the cadences are fixed as composers write them: a phrase that asks
  a question ends on the dominant (a half cadence), one that answers it on V -> I, the piece on
  the tonic. A section of contrast (``B``) starts away from the tonic.
- **Harmonic rhythm** follows the energy: in calm bars a chord lasts two bars, in busy ones a
  bar, and a cadence bar may take two (ii -> V, IV -> V).
- **Pedal points**: calm opening phrases hold the tonic in the bass under the moving chords.
- **Bass notes** are chosen for a singable line: the root, or the third (a first inversion) when
  that gives a step; a diminished triad is never in root position; cadence goals are in root
  position.
- **Voicing**: the harmony part holds common tones and moves the other voices the least
  distance, inside its instrument's range and below the melody.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...theory import Key


@dataclass
class Chord:
    start: float  # beats from the bar's downbeat
    degree: int  # scale degree 0..6
    tones: list[int]  # pitch classes, root first
    bass_pc: int  # the pitch class in the bass
    pedal: bool = False  # the bass holds the tonic under it


def diminished(key: Key, degree: int) -> bool:
    root, third, fifth = key.chord(degree)[:3]
    return (third - root) % 12 == 3 and (fifth - root) % 12 == 6


def _sample(rng: np.random.Generator, probs) -> int:
    p = np.asarray(probs, np.float64)
    return int(rng.choice(len(p), p=p / p.sum()))


def phrase_degrees(rng: np.random.Generator, stats: dict, n_bars: int, cadence: str | None, start: int | None,
                   prev: int | None) -> list[int]:
    """One scale degree per bar of a phrase of ``n_bars``: learned transitions in between, the
    cadence at the end (``half``: V; ``full`` / ``final``: V then I)."""
    transition = stats["transition"]
    degrees: list[int] = []
    for i in range(n_bars):
        left = n_bars - i
        if cadence in ("full", "final") and left == 1:
            d = 0
        elif cadence in ("full", "final") and left == 2 or cadence == "half" and left == 1:
            d = 4
        elif i == 0 and start is not None:
            d = start
        elif prev is None:
            d = _sample(rng, stats["start"])
        else:
            p = np.array(transition[prev], np.float64)
            p[prev] *= 0.05  # a new bar, a new chord (a held chord is the harmonic rhythm's choice)
            if cadence and left <= 3:
                p[4] *= 0.3  # keep the dominant for the cadence
            d = _sample(rng, p)
        degrees.append(d)
        prev = d
    return degrees


def bar_chords(key: Key, degrees: list[int], lengths: list[int], energies: list[float], cadences: list[str | None],
               rng: np.random.Generator, sevenths: bool, chroma: float, pedal: bool) -> list[list[Chord]]:
    """The chords of each bar of a phrase from its degrees: held over two bars when calm, a
    pre-dominant before a busy cadence, the bass chosen for a smooth line."""
    out: list[list[Chord]] = []
    for i, (d, beats, energy, cadence) in enumerate(zip(degrees, lengths, energies, cadences)):
        goal = cadence is not None and i == len(degrees) - 1
        if i % 2 == 1 and energy < 0.35 and not goal and not cadence and degrees[i] != 4:
            d = degrees[i - 1]  # a slow harmonic rhythm: the chord of the bar before holds
        chords = [(0.0, d)]
        if energy >= 0.55 and beats >= 4 and d == 4 and not goal and i > 0:
            chords = [(0.0, int(rng.choice([1, 3]))), (beats / 2, 4)]  # ii - V or IV - V in one bar
        out.append([_chord(key, deg, start, sevenths and not goal, chroma) for start, deg in chords])
    if pedal:
        for bar in out:
            for c in bar:
                c.pedal, c.bass_pc = True, key.tonic
    return out


def _chord(key: Key, degree: int, start: float, seventh: bool, chroma: float) -> Chord:
    tones = key.chord(degree, seventh=seventh or chroma > 1.4, ninth=chroma > 2.2)
    if chroma < 0.6:
        tones = [tones[0], key.chord(degree)[2]]  # an open fifth: no third
    return Chord(start, degree, tones, tones[0])


def choose_basses(chords: list[Chord], key: Key, cadence_goal: set[int]) -> None:
    """Each chord's bass note: the root, or the third where that gives a step from the bass before
    (and always the third for a diminished triad); the chords at ``cadence_goal`` (indices) keep
    the root."""
    prev_pc = None
    for i, c in enumerate(chords):
        if c.pedal:
            prev_pc = c.bass_pc
            continue
        root, third = c.tones[0], c.tones[1] if len(c.tones) > 2 else c.tones[0]
        if diminished(key, c.degree):
            c.bass_pc = third
        elif i in cadence_goal or prev_pc is None:
            c.bass_pc = root
        else:
            step = lambda pc: min((pc - prev_pc) % 12, (prev_pc - pc) % 12)  # noqa: E731
            c.bass_pc = third if 0 < step(third) <= 2 < step(root) else root
        prev_pc = c.bass_pc


def voice(tones: list[int], previous: list[int] | None, low: int, top: int,
          rng: np.random.Generator | None = None) -> list[int]:
    """A voicing of ``tones`` (pitch classes, one voice each) between ``low`` and ``top``
    (inclusive) that moves least from ``previous``: common tones are held. Without ``previous``
    (a section's first chord) one of the three voicings nearest the range's middle, by ``rng``."""
    tones = list(dict.fromkeys(tones))
    candidates = []
    for lowest in range(low, low + 12):
        if lowest % 12 not in tones:
            continue
        start = tones.index(lowest % 12)
        order = tones[start:] + tones[:start]
        pitches, p = [lowest], lowest
        for pc in order[1:]:
            p = p + ((pc - p) % 12 or 12)
            pitches.append(p)
        for shift in (0, 12):
            v = [x + shift for x in pitches]
            if v[-1] <= top:
                candidates.append(v)
    if not candidates:  # a narrow range: the tones folded under the top
        return sorted({top - ((top - pc) % 12) for pc in tones})
    if previous is None:
        centre = (low + top) / 2
        ranked = sorted(candidates, key=lambda v: abs(np.mean(v) - centre))
        return ranked[int(rng.integers(min(3, len(ranked))))] if rng is not None else ranked[0]

    def movement(v: list[int]) -> float:
        return sum(min(abs(x - y) for y in previous) for x in v) + sum(min(abs(x - y) for x in v) for y in previous)

    return min(candidates, key=movement)
