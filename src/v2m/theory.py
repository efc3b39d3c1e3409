"""Keys, scales and diatonic chords: the small amount of music theory the controls (``--key``)
and the composer need."""

from __future__ import annotations

import re
from dataclasses import dataclass

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_LETTER = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
MAJOR = (0, 2, 4, 5, 7, 9, 11)
NATURAL_MINOR = (0, 2, 3, 5, 7, 8, 10)


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class 0..11
    mode: str  # "major" or "minor"

    @property
    def name(self) -> str:
        return f"{NOTE_NAMES[self.tonic]} {self.mode}"

    @property
    def scale(self) -> tuple[int, ...]:
        """Pitch classes of the seven degrees (natural minor for minor keys)."""
        steps = MAJOR if self.mode == "major" else NATURAL_MINOR
        return tuple((self.tonic + s) % 12 for s in steps)

    def degree_pitch(self, degree: int, octave_base: int = 60) -> int:
        """MIDI pitch of scale ``degree`` (0 = tonic; any integer, wraps by octaves) above the
        tonic nearest below ``octave_base``."""
        steps = MAJOR if self.mode == "major" else NATURAL_MINOR
        octave, d = divmod(degree, 7)
        base = octave_base - ((octave_base - self.tonic) % 12)
        return base + 12 * octave + steps[d]

    def chord(self, degree: int, seventh: bool = False, ninth: bool = False) -> list[int]:
        """Pitch classes of the diatonic chord on ``degree`` (0-based): root, third, fifth, and
        optionally seventh and ninth. In minor, V and vii use the raised leading tone."""
        scale = list(self.scale)
        if self.mode == "minor" and degree % 7 in (4, 6):
            scale[6] = (self.tonic + 11) % 12
        tones = [0, 2, 4] + ([6] if seventh else []) + ([8] if ninth else [])
        return [scale[(degree + t) % 7] for t in tones]


def parse_key(text: str) -> Key:
    """``"D minor"``, ``"Dm"``, ``"F# major"``, ``"Bb"`` (major) -> :class:`Key`."""
    m = re.fullmatch(r"\s*([A-Ga-g])([#b]?)\s*(major|minor|maj|min|m|)\s*", text)
    if not m:
        raise ValueError(f"key {text!r} not understood; write e.g. 'D minor', 'F# major', 'Bb', 'Em'")
    letter, accidental, mode = m.groups()
    tonic = (_LETTER[letter.upper()] + {"#": 1, "b": -1, "": 0}[accidental]) % 12
    return Key(tonic, "minor" if mode in ("minor", "min", "m") else "major")
