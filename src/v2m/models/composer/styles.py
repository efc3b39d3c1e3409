"""The composer's styles: which instruments play, in what ranges, and how each part moves.

A style is what a library-music composer decides before the first note: the ensemble (General
MIDI programs, each in the range a player is comfortable in, not the instrument's extremes), how
the harmony is played (held, pulsed, arpeggiated, strummed), the bass figure, the drum groove
family, the tempo range, the swing, the room and the harmonic vocabulary. ``--style NAME`` picks
one; by default :func:`choose_style` picks from the picture (how busy it is and how bright).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Instrument:
    program: int  # General MIDI program, 0-based
    low: int  # comfortable range, MIDI pitches
    high: int
    legato: float = 0.0  # seconds a note overlaps the next (winds, strings, voices)
    pedal: bool = False  # sustain pedal (piano-like instruments)
    swell: bool = False  # expression swells on long notes (strings, pads, brass)
    name: str = ""


@dataclass(frozen=True)
class Style:
    name: str
    description: str
    melody: Instrument
    harmony: Instrument
    bass: Instrument
    harmony_figure: str  # sustain | pulse | arpeggio | strum | comp
    bass_figure: str  # long | root_fifth | walking | eighths | offbeat | pedal
    groove: str | None  # drum groove family (see drums.GROOVES); None: no kit
    tempo: tuple[float, float]  # BPM range the grid may choose from
    swing: float = 0.5  # the share of a beat the first of two eighths takes (0.5: straight)
    room: str = "room"  # reverb preset (score.Room presets)
    sevenths: bool = False  # seventh chords as the plain vocabulary
    density: float = 1.0  # melody onsets relative to the energy's choice
    counter: Instrument | None = None  # an extra line (arpeggio, counter-melody) when the energy is high
    counter_figure: str = "arpeggio"
    pans: dict = field(default_factory=dict)  # part -> MIDI pan (64 centre)


def _i(program: int, low: int, high: int, name: str, **kw) -> Instrument:
    return Instrument(program, low, high, name=name, **kw)


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            "ambient-piano", "solo piano over a soft string pad, no drums; slow harmony, wide room",
            melody=_i(0, 62, 86, "piano (right hand)", pedal=True),
            harmony=_i(49, 45, 69, "slow strings", legato=0.08, swell=True),
            bass=_i(0, 33, 55, "piano (left hand)", pedal=True),
            harmony_figure="sustain", bass_figure="long", groove=None, tempo=(62.0, 84.0),
            room="hall", density=0.8, counter=_i(11, 64, 88, "vibraphone"), counter_figure="arpeggio",
            pans={"melody": 58, "harmony": 70, "bass": 52, "counter": 84},
        ),
        Style(
            "cinematic-strings", "violins and horn over divided strings, cellos and basses; timpani for the big cuts",
            melody=_i(40, 62, 88, "violins", legato=0.06, swell=True),
            harmony=_i(48, 48, 72, "strings", legato=0.08, swell=True),
            bass=_i(42, 36, 57, "cellos and basses", legato=0.05, swell=True),
            harmony_figure="sustain", bass_figure="long", groove="orchestral", tempo=(68.0, 104.0),
            room="hall", density=0.9, counter=_i(60, 53, 74, "French horn", legato=0.05, swell=True),
            counter_figure="counter", pans={"melody": 46, "harmony": 64, "bass": 80, "counter": 56},
        ),
        Style(
            "acoustic", "flute and strummed steel-string guitar, acoustic bass, a light kit",
            melody=_i(73, 67, 91, "flute", legato=0.03),
            harmony=_i(25, 45, 71, "steel-string guitar"),
            bass=_i(32, 31, 52, "acoustic bass"),
            harmony_figure="strum", bass_figure="root_fifth", groove="light", tempo=(84.0, 118.0),
            swing=0.54, room="room", density=1.0, counter=_i(46, 55, 84, "harp"), counter_figure="arpeggio",
            pans={"melody": 76, "harmony": 44, "bass": 64, "counter": 90},
        ),
        Style(
            "lofi", "electric piano and vibraphone with seventh chords, round bass, a swung boom-bap kit",
            melody=_i(11, 62, 86, "vibraphone"),
            harmony=_i(4, 50, 74, "electric piano", pedal=True),
            bass=_i(33, 31, 52, "fingered bass"),
            harmony_figure="comp", bass_figure="walking", groove="boom_bap", tempo=(70.0, 92.0),
            swing=0.6, room="plate", sevenths=True, density=0.8,
            pans={"melody": 74, "harmony": 54, "bass": 64},
        ),
        Style(
            "drive", "pop/rock: lead guitar over piano and pick bass, a rock kit with fills",
            melody=_i(29, 57, 84, "overdriven guitar", legato=0.02),
            harmony=_i(0, 48, 74, "piano"),
            bass=_i(34, 28, 50, "pick bass"),
            harmony_figure="pulse", bass_figure="eighths", groove="rock", tempo=(104.0, 140.0),
            swing=0.5, room="room", density=1.1, counter=_i(27, 55, 79, "clean guitar"), counter_figure="arpeggio",
            pans={"melody": 80, "harmony": 48, "bass": 64, "counter": 30},
        ),
        Style(
            "electronic", "saw lead, polysynth pad and arpeggio, synth bass, four-on-the-floor kit",
            melody=_i(81, 60, 86, "saw lead", legato=0.01),
            harmony=_i(90, 48, 72, "polysynth pad", swell=True),
            bass=_i(38, 28, 50, "synth bass"),
            harmony_figure="pulse", bass_figure="offbeat", groove="four_floor", tempo=(112.0, 128.0),
            swing=0.5, room="plate", density=1.0, counter=_i(80, 60, 84, "square arpeggio"), counter_figure="arpeggio",
            pans={"melody": 70, "harmony": 58, "bass": 64, "counter": 40},
        ),
    )
}
DEFAULT_STYLE = "ambient-piano"


def choose_style(arousal: float, valence: float) -> str:
    """The style for a picture: calm footage gets piano or strings, moderate footage acoustic or
    lo-fi, busy footage a driving band or electronic music; bright, warm pictures the first of
    each pair, dark or cool ones the second."""
    bright = valence >= 0.0
    if arousal < 0.3:
        return "ambient-piano" if bright else "cinematic-strings"
    if arousal < 0.55:
        return "acoustic" if bright else "lofi"
    return "drive" if bright else "electronic"


def style_list() -> str:
    """The styles, a line each, for ``--style list``."""
    width = max(len(n) for n in STYLES)
    return "\n".join(f"{name:<{width}}  {s.description} ({s.tempo[0]:.0f}-{s.tempo[1]:.0f} BPM)"
                     for name, s in STYLES.items())
