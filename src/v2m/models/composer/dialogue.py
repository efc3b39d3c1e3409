"""Writing under dialogue: the arrangement thinned wherever someone speaks.

A composer scoring an interview or a vlog gets out of the voice's way: no tune competing with
the words, no busy figures, no drum fills; held harmony, softer. :func:`under_speech` is that
pass over the performed score (after :func:`.compose.perform`, the hits and the loudness
controls), so the music away from speech is note for note what it would be without any: the
seeded choices are all made before it, and it draws none.

Inside the speech zone (each span from ``LEAD_IN`` before it to ``TAIL`` after it):

- **melody** and its **sparkle** double: no note starts; a note that rings into the zone stops
  where it begins;
- **harmony**: each chord that sounds in the zone is one held chord (its figure's pitches
  struck together on the chord's first beat and held to its end), ``HELD`` of its loudness;
- **bass**: one long note per chord (the figure's first pitch);
- **counter line**: silent;
- **drums**: only the kick (or the bass drum) on each downbeat, at ``SOFT`` of its loudness; no
  groove, fill, riser or cymbal (the zone reaches ``DRUM_LEAD_IN`` back for them, so a fill into
  the first word is gone too);
- **timpani** at ``SOFT`` of its loudness.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .harmony import Chord
from .parts import BASS_DRUM, KICK
from .plan import Bar
from .score import Note, Part

LEAD_IN = 0.3  # seconds before a span of speech the arrangement thins
TAIL = 0.5  # seconds after it
DRUM_LEAD_IN = 1.0  # seconds before it the drums are already down to the downbeat kicks
HELD = 0.8  # velocity of the held harmony and bass against the figures they replace
SOFT = 0.6  # velocity of the downbeat kicks and the timpani


def _zones(spans: Sequence[tuple[float, float]], before: float, after: float) -> np.ndarray:
    """The spans widened by ``before`` and ``after`` seconds and merged where they meet, [n, 2]."""
    out: list[list[float]] = []
    for a, z in sorted((float(a) - before, float(z) + after) for a, z in spans if z > a):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], z)
        else:
            out.append([a, z])
    return np.asarray(out, np.float64).reshape(-1, 2)


def _inside(zones: np.ndarray, t: float) -> bool:
    i = int(np.searchsorted(zones[:, 0], t, side="right")) - 1
    return i >= 0 and t < zones[i, 1]


def _overlaps(zones: np.ndarray, a: float, z: float) -> bool:
    return bool(np.any((zones[:, 0] < z) & (zones[:, 1] > a)))


def chord_times(bars: list[Bar], chords: list[list[Chord]]) -> list[tuple[Bar, float, float]]:
    """Every chord of the cue as (its bar, start, end) in seconds."""
    out = []
    for bar in bars:
        row = chords[bar.index]
        for i, c in enumerate(row):
            end = row[i + 1].start if i + 1 < len(row) else bar.n_beats
            out.append((bar, bar.at(c.start), bar.at(end)))
    return out


def under_speech(notes: list[Note], parts: list[Part], bars: list[Bar], chords: list[list[Chord]],
                 speech: Sequence[tuple[float, float]], duration: float) -> list[Note]:
    """``notes`` thinned inside the speech zones (see the module docstring), sorted as the score
    keeps them; unchanged when ``speech`` is empty. ``speech`` is ``(start, end)`` seconds."""
    zones = _zones(speech, LEAD_IN, TAIL)
    if not len(zones):
        return notes
    drum_zones = _zones(speech, DRUM_LEAD_IN, TAIL)
    name = {i: p.name for i, p in enumerate(parts)}
    downbeats = np.array([b.beats[0] for b in bars])
    out: list[Note] = []
    by_part: dict[str, list[Note]] = {}
    for n in notes:
        by_part.setdefault(name[n.part], []).append(n)
    for part, part_notes in by_part.items():
        if part in ("melody", "sparkle"):
            for n in part_notes:
                if _inside(zones, n.start):
                    continue
                later = zones[zones[:, 0] > n.start]
                if len(later) and n.end > later[0, 0]:  # ringing into the zone: stop at its edge
                    n.end = max(n.start + 0.05, float(later[0, 0]))
                out.append(n)
        elif part == "counter":
            out += [n for n in part_notes if not _inside(zones, n.start)]
        elif part == "drums":
            for n in part_notes:
                if not _inside(drum_zones, n.start):
                    out.append(n)
                elif n.pitch in (KICK, BASS_DRUM) and np.min(np.abs(downbeats - n.start)) < 0.06:
                    out.append(Note(n.start, n.end, n.pitch, max(1, round(SOFT * n.velocity)), n.part))
        elif part == "timpani":
            for n in part_notes:
                if _inside(zones, n.start):
                    n.velocity = max(1, round(SOFT * n.velocity))
                out.append(n)
        elif part in ("harmony", "bass"):
            out += _held(part_notes, chord_times(bars, chords), zones, part == "bass", duration)
        else:
            out += part_notes
    out.sort(key=lambda n: (n.start, n.part, n.pitch))
    return out


def _held(notes: list[Note], spans: list[tuple[Bar, float, float]], zones: np.ndarray, bass: bool,
          duration: float) -> list[Note]:
    """A part's notes with each chord that sounds in a zone held: the pitches struck in it (the
    first one, for the bass) on its first beat, to its end."""
    starts = np.array([n.start for n in notes])
    keep = np.ones(len(notes), bool)
    held: list[Note] = []
    for bar, a, z in spans:
        if not _overlaps(zones, a, z):
            continue
        # a chord's notes start from a little before its beat (the performance's timing) to its end
        inside = np.flatnonzero((starts >= a - 0.05) & (starts < z - 0.05) & keep)
        if not len(inside):
            continue
        keep[inside] = False
        struck = [notes[i] for i in inside]
        velocity = max(1, round(HELD * float(np.median([n.velocity for n in struck]))))
        end = max([z] + [n.end for n in struck]) if bar.final else z  # the last chord rings on
        end = min(end, duration + 2.0)
        pitches = [min(struck, key=lambda n: n.start).pitch] if bass else sorted({n.pitch for n in struck})
        held += [Note(a, end, p, velocity, struck[0].part) for p in pitches]
    return [n for n, k in zip(notes, keep) if k] + held
