"""The plan of a cue: its bars, their energy, its sections and phrases, its cadences and ending.

- **Bars** come from the beat grid (2, 3 or 4 beats each), extended so the bar that holds the
  last frame is complete.
- **Energy** per bar is the picture's motion over the bar (with the ``move`` control), 0..1.
- **Sections** start at the cuts that matter (those the grid put on a downbeat because they
  open a long shot or change the picture most) and, inside a long shot, every 8 bars when busy
  or 16 when calm, so a one-shot video still has a form. Sections are labelled as a form:
  ``A B A' C A'' B' ...``; a label's primes reuse its motif, varied.
- **Phrases** are 4 bars (an antecedent, then a consequent: a period of 8); a section's last
  phrase absorbs a remainder of one or two bars, or is a 3-bar phrase. Each phrase ends on a
  cadence: ``half`` after an antecedent, ``full`` after a consequent and at a section's end,
  ``final`` at the end of the cue.
- **Layers** (0..3) follow the energy and build through the cue: harmony, melody and bass always
  play (the bass in long notes at 0), 1 moves the figures, 2 adds the drums, 3 the counter line.
  A long cue opens sparsely: its first phrase has at most one layer and the melody waits two bars.
- **Modulation**: a cue of at least 64 bars and four sections rises a whole step for its last
  section that starts after 60 % of it; the bar before that section is the new key's dominant.
- **The ending**: the final bar is the last one whose downbeat comes at least half a beat before
  the last frame; its tonic chord is held through the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...theory import Key

MOTION_REF = 0.6  # mean luma change per second of clearly busy footage
FORM = ("A", "B", "A'", "C", "A''", "B'", "A'''", "C'")


@dataclass
class Bar:
    index: int
    beats: np.ndarray  # beat times of the bar, seconds
    end: float  # the next bar line
    energy: float = 0.0
    section: int = 0  # the section's number, in order
    shot: int = 0  # the shot its downbeat falls in
    label: str = "A"
    phrase_bar: int = 0  # bar within its phrase
    phrase_length: int = 4
    phrase: int = 0  # the phrase's number within its section (even: antecedent)
    cadence: str | None = None  # on the phrase's last bar: half | full | final
    layers: int = 1
    hit: bool = False  # a cut that matters falls on its downbeat
    final: bool = False  # the bar that holds the last frame's tonic
    key: Key | None = None  # the key the bar is in (a long cue modulates once)
    length: float = 0.0  # in beats (quarter notes): 2, 3, 4, or 2.5 / 3.5 for 5/8 and 7/8; 0: len(beats)

    def __post_init__(self):
        if not self.length:
            self.length = float(len(self.beats))

    @property
    def n_beats(self) -> float:
        """The bar's length in beats; a bar of 7/8 is 3.5 (its last beat an eighth)."""
        return self.length

    def at(self, pos: float) -> float:
        """The time of a position in beats from the downbeat (linear between this bar's beats; in a
        bar of 5/8 or 7/8 the eighth that ends it is half a beat)."""
        edges = np.append(self.beats, self.end)
        places = np.append(np.arange(len(self.beats), dtype=np.float64), self.length)
        return float(np.interp(pos, places, edges))

    @property
    def beat_length(self) -> float:
        return (self.end - self.beats[0]) / self.n_beats


def grid_bars(grid, duration: float) -> list[Bar]:
    """The grid's bars from the first bar line to the one holding ``duration`` (completed at the
    last beat length when the grid stops inside it)."""
    raw = [np.asarray(b, np.float64) for b in grid.bars()]
    lengths = [float(n) for n in grid.bar_lengths]
    bars: list[Bar] = []
    for i, beats in enumerate(raw):
        end = raw[i + 1][0] if i + 1 < len(raw) else None
        if end is None:
            later = grid.times[grid.times > beats[-1] + 1e-9]
            end = float(later[0]) if len(later) else float(beats[-1] + (beats[-1] - beats[-2]) if len(beats) > 1 else
                                                            beats[-1] + 0.5)
        bars.append(Bar(i, beats, float(end), length=lengths[i]))
    if not bars:
        step = 0.5
        bars.append(Bar(0, np.arange(4) * step, 4 * step))
    while bars[-1].end < duration:  # complete the grid past the last frame
        last = bars[-1]
        step = last.beat_length
        n = 4
        bars.append(Bar(len(bars), last.end + step * np.arange(n), last.end + step * n))
    return bars


def bar_energies(bars: list[Bar], motion: np.ndarray) -> None:
    """Each bar's energy: its mean motion, against a fixed reference and the video's own range."""
    p90 = float(np.percentile(motion, 90)) + 1e-6 if len(motion) else 1.0
    for bar in bars:
        a, z = max(0.0, bar.beats[0]), max(0.0, bar.end)
        secs = np.arange(int(a), min(len(motion), int(np.ceil(z))))
        m = float(np.mean(motion[secs])) if len(secs) else (float(np.mean(motion)) if len(motion) else 0.0)
        bar.energy = float(np.clip(0.5 * min(1.0, m / MOTION_REF) + 0.5 * min(1.0, m / p90), 0.0, 1.0))


def plan_form(bars: list[Bar], hits: list[float], shot_starts: np.ndarray, duration: float,
              new_motif: list[bool] | None = None) -> list[str]:
    """Sections, phrases, cadences, the final bar and the layers (see the module docstring).
    ``hits`` are the cut times that open sections (on downbeats). Returns the sections' labels."""
    for bar in bars:
        bar.shot = max(0, int(np.searchsorted(shot_starts, bar.beats[0] + 0.045, side="right") - 1))  # a downbeat may lead its cut by 40 ms
    # the final bar: its downbeat at least half a beat before the end
    final = max((b.index for b in bars if b.beats[0] <= duration - 0.5 * b.beat_length), default=0)
    for b in bars[final + 1:]:
        b.final = False
    bars[final].final = True
    body = bars[: final + 1]

    starts = [0]
    for b in body[1:]:
        if any(abs(b.beats[0] - h) < 0.06 for h in hits):
            b.hit = True
            if b.index - starts[-1] >= 4 and final - b.index >= 2:
                starts.append(b.index)
    # long sections are divided: every 16 bars when calm, 8 when busy
    divided = []
    for s, e in zip(starts, starts[1:] + [final + 1]):
        i = s
        while e - i > 20:
            calm = np.mean([bars[k].energy for k in range(i, min(e, i + 16))]) < 0.35
            step = 16 if calm else 8
            divided.append(i)
            i += step
        divided.append(i)
    starts = divided
    labels: list[str] = []
    for n, (s, e) in enumerate(zip(starts, starts[1:] + [final + 1])):
        label = FORM[n % len(FORM)] if n < len(FORM) else FORM[2 + (n - 2) % (len(FORM) - 2)]
        labels.append(label)
        _phrases(bars[s:e], n, label, last=e == final + 1)
    for b in bars[final + 1:]:  # past the final bar (the release): as the final bar
        b.section, b.label, b.phrase, b.phrase_bar = bars[final].section, bars[final].label, bars[final].phrase, 0
    _layers(bars[: final + 1], len(bars[: final + 1]))
    return labels


def _phrases(section: list[Bar], number: int, label: str, last: bool) -> None:
    n = len(section)
    lengths = [4] * (n // 4)
    rest = n % 4
    if rest:
        if lengths and rest <= 2:
            lengths[-1] += rest
        else:
            lengths.append(rest)
    i = 0
    for p, length in enumerate(lengths):
        for k in range(length):
            bar = section[i + k]
            bar.section, bar.label, bar.phrase, bar.phrase_bar, bar.phrase_length = number, label, p, k, length
            bar.cadence = None
        end = section[i + length - 1]
        if last and p == len(lengths) - 1:
            end.cadence = "final"
        elif p == len(lengths) - 1 or p % 2 == 1:
            end.cadence = "full"
        else:
            end.cadence = "half"
        i += length


def _layers(bars: list[Bar], total: int) -> None:
    """How many layers play in each bar: from the energy, building through the cue, sparse at the
    start of a long one."""
    for b in bars:
        level = b.energy + 0.25 * b.index / max(1, total - 1)
        layers = 0 if level < 0.15 else 1 if level < 0.4 else 2 if level < 0.7 else 3
        if total >= 16 and b.section == 0 and b.phrase == 0:
            layers = min(layers, 1)  # a sparse opening
        b.layers = layers


def plan_keys(bars: list[Bar], key: Key) -> None:
    """Each bar's key (see the module docstring): ``key``, and in a long cue a whole step up from
    its late section on, prepared by the bar before it (the new key's dominant)."""
    for b in bars:
        b.key = key
    sections = sorted({b.section for b in bars})
    if len(bars) < 64 or len(sections) < 4:
        return
    late = [s for s in sections if next(b.index for b in bars if b.section == s) >= 0.6 * len(bars)]
    if not late:
        return
    first = next(b.index for b in bars if b.section == late[0])
    lifted = Key((key.tonic + 2) % 12, key.mode)
    for b in bars[max(0, first - 1):]:
        b.key = lifted
