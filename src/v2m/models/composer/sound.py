"""How the composer's scores sound: the soundfont, the room, and a stereo image that survives mono.

**Soundfont.** ``--soundfont FILE`` when given (a SoundFont 2 or 3: a RIFF ``sfbk`` file), else
the first installed of: MuseScore General (Debian's ``musescore-general-soundfont``, which
``setup.sh`` installs; an .sf3 whose samples are Ogg Vorbis), FluidR3 GM (Debian's
``fluid-soundfont-gm``), and last TimGM6mb (Debian's, or the one pretty-midi ships), which comes
with a warning: it is small, and its strings and pads cancel when played in mono.

**Synth.** FluidSynth (pyfluidsynth over the ``libfluidsynth3`` system library) with dynamic
sample loading on: a soundfont loads in a few hundredths of a second and each preset's samples
are read (for .sf3, decoded) only when a part selects it, instead of the whole file at load
(about 7 s for MuseScore General).

**Room.** The synth's reverb, one :class:`Room` per score: :data:`ROOMS` names the presets.

**Mono.** Played in mono (a phone, a club's PA), ``(L + R) / 2`` of a wide or phase-shifted
part can lose much of its loudness. :func:`narrow_for_mono` scales a stem's side signal
``(L - R) / 2`` just enough that its fold-down loses at most :data:`MAX_MONO_LOSS`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ...errors import V2MError
from ...loudness import LoudnessMeter, gated_loudness

MUSESCORE_GENERAL = (
    "/usr/share/sounds/sf3/MuseScore_General_Full.sf3",  # the file musescore-general-soundfont installs
    "/usr/share/sounds/sf3/MuseScore_General.sf3",  # the name Debian's alternatives give it
)
FLUIDR3 = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
)


def _shipped_timgm6mb() -> tuple[str, ...]:
    """pretty-midi's copy of TimGM6mb, found without importing pretty-midi."""
    spec = importlib.util.find_spec("pretty_midi")
    folders = list(spec.submodule_search_locations or []) if spec else []
    return tuple(os.path.join(f, "TimGM6mb.sf2") for f in folders)


TIMGM6MB = ("/usr/share/sounds/sf2/TimGM6mb.sf2",) + _shipped_timgm6mb()

GAIN = 0.5  # FluidSynth's master gain for every part
MAX_MONO_LOSS = 3.0  # LU a part may lose in the mono fold-down


@dataclass(frozen=True)
class Room:
    """FluidSynth's reverb: ``roomsize`` (0-1: the decay time), ``damping`` (0-1: how fast the
    highs decay), ``width`` (0-1: 0 the same reverb on both sides, 1 independent sides) and
    ``level`` (0-1: the wet signal; each part sends to it by its own amount, CC 91)."""

    roomsize: float = 0.5
    damping: float = 0.4
    width: float = 0.8
    level: float = 0.6

    def __post_init__(self) -> None:
        for name in ("roomsize", "damping", "width", "level"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Room.{name} must be between 0 and 1, got {value}")


# Decay times (RT60 from the slope of the tail's energy, -5 to -25 dB, of a clave at full reverb
# send, MuseScore General): studio 0.24 s, room 1.1 s, plate 1.6 s, hall 2.7 s.
ROOMS = {
    "studio": Room(roomsize=0.2, damping=0.7, width=0.5, level=0.3),  # dry and close
    "room": Room(),  # a medium room: the default
    "plate": Room(roomsize=0.6, damping=0.1, width=1.0, level=0.6),  # bright and dense
    "hall": Room(roomsize=0.75, damping=0.3, width=1.0, level=0.7),  # long and wide: strings, pads
}


# --- the soundfont --------------------------------------------------------------------------


def check_soundfont(path: str) -> None:
    """Refuse a file that is not a SoundFont 2 or 3 (a RIFF ``sfbk`` file; SoundFont 3 differs
    only in compressed samples) before FluidSynth reads it (it would print its own error lines,
    then load nothing)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as e:
        raise V2MError(f"soundfont cannot be read ({e.strerror or e})", path) from None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise V2MError("is not a SoundFont file (.sf2 or .sf3)", path)


def choose_soundfont(explicit: str | None = None) -> tuple[str, str | None]:
    """``(path, warning)``: ``explicit`` (checked), else the best General MIDI soundfont
    installed (see the module docstring). The warning (one line, else None) comes with
    TimGM6mb chosen because nothing better is installed."""
    if explicit:
        if not os.path.isfile(explicit):
            raise V2MError("soundfont not found", explicit)
        check_soundfont(explicit)
        return explicit, None
    for path in MUSESCORE_GENERAL + FLUIDR3:
        if os.path.isfile(path):
            return path, None
    for path in TIMGM6MB:
        if os.path.isfile(path):
            return path, (f"{path}: the only soundfont found is the small TimGM6mb (thin strings and pads, "
                          "narrowed to stay audible in mono); for better sound install MuseScore General "
                          "(./setup.sh does: apt-get install musescore-general-soundfont) or pass --soundfont FILE")
    raise V2MError("no General MIDI soundfont found; install musescore-general-soundfont (./setup.sh does) or "
                   "pass --soundfont FILE")


def find_soundfont(explicit: str | None = None) -> str:
    """The soundfont :func:`choose_soundfont` chooses, without its warning."""
    return choose_soundfont(explicit)[0]


# --- the synth ------------------------------------------------------------------------------


@contextlib.contextmanager
def open_synth(soundfont: str, sample_rate: int, room: Room) -> Iterator[tuple[object, int]]:
    """``(synth, soundfont id)``: a FluidSynth synth at ``sample_rate`` with ``soundfont``
    loaded (dynamic sample loading on) and ``room`` as its reverb; deleted on exit."""
    import fluidsynth

    synth = fluidsynth.Synth(samplerate=float(sample_rate), gain=GAIN, **{"synth.dynamic-sample-loading": 1})
    try:
        sfid = synth.sfload(soundfont)
        if sfid < 0:
            raise V2MError("FluidSynth cannot load this soundfont", soundfont)
        synth.set_reverb(roomsize=room.roomsize, damping=room.damping, width=room.width, level=room.level)
        yield synth, sfid
    finally:
        synth.delete()


# --- mono -----------------------------------------------------------------------------------


def narrow_for_mono(stem: np.ndarray, sample_rate: int, max_loss: float = MAX_MONO_LOSS) -> tuple[np.ndarray, float]:
    """``(stem, factor)``: the stereo ``stem`` ``[2, n]`` with its side signal ``S = (L - R) / 2``
    scaled by ``factor`` so that its fold-down ``M = (L + R) / 2`` (unchanged) loses at most
    ``max_loss`` LU (:func:`v2m.loudness.mono_loss`). A stem that loses no more than that, a
    silent one, and one whose fold-down is silent (narrowed, it would be silent in stereo too)
    come back as they are, the same array, with factor 1.0. The factor is
    :func:`narrowing_factor` of the whole stem's mid and side power (how it is found is told
    there); a stem rendered in blocks gets the same one from its blocks."""
    if not stem.any():  # a part that never plays: nothing to measure
        return stem, 1.0
    mid = stem.mean(axis=0, dtype=np.float32)
    meter = LoudnessMeter(sample_rate)
    meter.add(np.stack([mid, stem[0] - mid]))
    factor = narrowing_factor(*meter.power(), max_loss)
    return narrowed(stem, factor), factor


def narrowing_factor(mid_power: np.ndarray, side_power: np.ndarray, max_loss: float = MAX_MONO_LOSS) -> float:
    """The side-signal factor of :func:`narrow_for_mono`, from the K-weighted mean squares of a
    stem's mid ``M = (L + R) / 2`` and side ``S = L - M`` in each gating block
    (:meth:`v2m.loudness.LoudnessMeter.power` of ``[M, S]``), so that a stem rendered in blocks
    need not be held. ``L = M + kS`` and ``R = M - kS`` have ``2M^2 + 2k^2 S^2`` as their summed
    power after the (linear) K-weighting, in every gating block, which gives the loudness of every
    narrowing without the audio; were there no gating the loss would be ``10 log10(1 + k^2 r)``
    with ``r`` the side-to-mid power ratio. Each measurement gives ``r``; the ``k`` that puts the
    loss 0.02 LU under ``max_loss`` is measured in turn, until one is within it (gating moves
    blocks in or out only a little, so one or two rounds). 1.0 for a stem that loses at most
    ``max_loss``, a silent one or one whose fold-down is silent; 0.0 where a few rounds do not get
    within it (the stem becomes its fold-down)."""
    mid_power, side_power = np.asarray(mid_power, np.float64), np.asarray(side_power, np.float64)
    stereo = gated_loudness(2 * mid_power + 2 * side_power)
    mono = gated_loudness(2 * mid_power)  # the dual-mono fold-down: the same for every factor
    if not math.isfinite(stereo) or not math.isfinite(mono) or stereo - mono <= max_loss:
        return 1.0
    loss, factor = stereo - mono, 1.0
    for _ in range(4):
        ratio = (10 ** (loss / 10) - 1) / factor**2
        factor = math.sqrt((10 ** ((max_loss - 0.02) / 10) - 1) / ratio)
        loss = gated_loudness(2 * mid_power + 2 * factor**2 * side_power) - mono
        if loss <= max_loss:
            return factor
    return 0.0


def narrowed(stem: np.ndarray, factor: float) -> np.ndarray:
    """``stem`` ``[2, k]`` with its side signal scaled by ``factor`` as :func:`narrow_for_mono`
    scales it (1.0: the same array; 0.0: its fold-down on both channels)."""
    if factor == 1.0:
        return stem
    mid = stem.mean(axis=0, dtype=np.float32)
    if factor == 0.0:
        return np.stack([mid, mid])
    side = stem[0] - mid
    return np.stack([mid + np.float32(factor) * side, mid - np.float32(factor) * side])
