"""A score (parts and notes on the beat grid), written as MIDI and rendered with FluidSynth.

The MIDI file carries the grid's tempo map (a ``set_tempo`` wherever the beat's length changes)
and a ``time_signature`` at every metre change (2/4, 3/4, 4/4), so a DAW shows the bars and the
beats as they are played and as they line up with the video's cuts. MIDI time 0 is the first bar
line, at or before the video's start; a marker ``video start`` shows where the video begins.

Rendering drives FluidSynth (pyfluidsynth, the ``libfluidsynth3`` system library) event by
event in stereo, with each part panned. The General MIDI soundfont is ``--soundfont``, else
Debian's FluidR3 GM (package ``fluid-soundfont-gm``) when installed, else the TimGM6mb
soundfont that the pretty-midi package ships.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ...errors import V2MError
from .grid import BeatGrid
from ...theory import Key

TICKS_PER_BEAT = 480
DRUM_CHANNEL = 9
SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
)


@dataclass(frozen=True)
class Part:
    name: str
    program: int  # General MIDI program, 0-based (ignored for drums)
    channel: int
    pan: int = 64  # 0 = left, 127 = right
    reverb: int = 40
    is_drum: bool = False


@dataclass
class Note:
    start: float  # seconds on the video's clock
    end: float
    pitch: int
    velocity: int
    part: int  # index into Score.parts


@dataclass
class Control:
    time: float  # seconds on the video's clock
    part: int  # index into Score.parts
    number: int  # MIDI controller (64 sustain pedal, 11 expression, ...)
    value: int


@dataclass
class Score:
    parts: list[Part]
    notes: list[Note]
    grid: BeatGrid
    key: Key
    duration: float
    sections: list[tuple[int, float, float]] = field(default_factory=list)  # (shot, start, end) by bars
    info: dict = field(default_factory=dict)
    controls: list[Control] = field(default_factory=list)
    key_changes: list[tuple[float, Key]] = field(default_factory=list)  # (time, key) from the start; key: the last

    def notes_of(self, name: str) -> list[Note]:
        index = [i for i, p in enumerate(self.parts) if p.name == name]
        return [n for n in self.notes if n.part in index]

    # --- MIDI ---------------------------------------------------------------------------

    def _tick(self, t: float) -> int:
        """The MIDI tick of time ``t``: a beat is ``TICKS_PER_BEAT`` ticks, tick 0 the grid's first
        bar line (earlier times clamp to it)."""
        return max(0, int(round(float(self.grid.position(t)) * TICKS_PER_BEAT)))

    def to_midi(self):
        """A ``mido.MidiFile`` (type 1): a track of tempo, metre, key and the video-start marker,
        then one track per part."""
        import mido

        midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
        meta = [*[(self._tick(t) if i else 0, mido.MetaMessage("key_signature", key=_midi_key_name(k)))
                  for i, (t, k) in enumerate(self.key_changes or [(0.0, self.key)])],
                (self._tick(0.0), mido.MetaMessage("marker", text="video start"))]
        for beat, numerator in self.grid.meter_changes():
            meta.append((beat * TICKS_PER_BEAT, mido.MetaMessage("time_signature", numerator=numerator, denominator=4)))
        previous = None
        for beat, seconds in enumerate(np.diff(self.grid.times)):  # the last beat's tempo holds after the grid
            tempo = int(round(seconds * 1e6))  # microseconds per beat
            if tempo != previous:
                meta.append((beat * TICKS_PER_BEAT, mido.MetaMessage("set_tempo", tempo=tempo)))
                previous = tempo
        midi.tracks.append(_track("v2m composer", meta))
        for p_index, part in enumerate(self.parts):
            events = [(0, mido.Message("control_change", channel=part.channel, control=10, value=part.pan)),
                      (0, mido.Message("control_change", channel=part.channel, control=91, value=part.reverb))]
            if not part.is_drum:
                events.append((0, mido.Message("program_change", channel=part.channel, program=part.program)))
            for n in self.notes:
                if n.part == p_index:
                    events.append((self._tick(n.start), mido.Message("note_on", channel=part.channel, note=n.pitch,
                                                                      velocity=n.velocity)))
                    events.append((max(self._tick(n.end), self._tick(n.start) + 1),
                                   mido.Message("note_off", channel=part.channel, note=n.pitch, velocity=0)))
            midi.tracks.append(_track(part.name, events))
        return midi

    # --- audio --------------------------------------------------------------------------

    def render(self, soundfont: str, sample_rate: int = 44100) -> np.ndarray:
        """Stereo float32 audio ``[2, round(duration * sample_rate)]``."""
        import fluidsynth

        synth = fluidsynth.Synth(samplerate=float(sample_rate), gain=0.5)
        try:
            sfid = synth.sfload(soundfont)
            if sfid < 0:
                raise V2MError("FluidSynth cannot load this soundfont", soundfont)
            synth.set_reverb(roomsize=0.5, damping=0.4, width=0.8, level=0.6)
            for part in self.parts:
                synth.program_select(part.channel, sfid, 128 if part.is_drum else 0, 0 if part.is_drum else part.program)
                synth.cc(part.channel, 10, part.pan)
                synth.cc(part.channel, 91, part.reverb)
            events = []
            for n in self.notes:
                ch = self.parts[n.part].channel
                events.append((max(0.0, n.start), 1, ch, n.pitch, n.velocity))
                events.append((max(0.0, n.end), 0, ch, n.pitch, 0))
            events.sort()
            total = int(round(self.duration * sample_rate))
            out = np.zeros((2, total), np.float32)
            pos = 0

            def render_until(at: int) -> None:
                nonlocal pos
                while pos < at:  # in blocks of at most 10 s: no full-length int16 copy
                    n = min(at - pos, 10 * sample_rate)
                    out[:, pos : pos + n] = synth.get_samples(n).reshape(-1, 2).T * np.float32(1 / 32768)
                    pos += n

            for t, kind, ch, pitch, vel in events:
                render_until(min(total, int(round(t * sample_rate))))
                if kind:
                    synth.noteon(ch, pitch, vel)
                else:
                    synth.noteoff(ch, pitch)
            render_until(total)
        finally:
            synth.delete()
        return out


def _track(name: str, events: list) -> "object":
    import mido

    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
    now = 0
    # note_off (velocity 0) before note_on at the same tick
    for tick, msg in sorted(events, key=lambda e: (e[0], 0 if e[1].type in ("note_off", "set_tempo") else 1)):
        msg = msg.copy(time=tick - now)
        now = tick
        track.append(msg)
    return track


def _midi_key_name(key: Key) -> str:
    names = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    return names[key.tonic] + ("m" if key.mode == "minor" else "")


def _check_soundfont(path: str) -> None:
    """Refuse a file that is not a SoundFont 2 (a RIFF ``sfbk`` file) before FluidSynth reads it
    (it would print its own error lines, then load nothing)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as e:
        raise V2MError(f"soundfont cannot be read ({e.strerror or e})", path) from None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise V2MError("is not a SoundFont 2 file (.sf2)", path)


def find_soundfont(explicit: str | None = None) -> str:
    """The soundfont to use: ``explicit``, else the best General MIDI soundfont installed."""
    if explicit:
        if not os.path.isfile(explicit):
            raise V2MError("soundfont not found", explicit)
        _check_soundfont(explicit)
        return explicit
    for path in SOUNDFONT_CANDIDATES:
        if os.path.isfile(path):
            return path
    import pretty_midi

    shipped = os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2")
    if os.path.isfile(shipped):
        return shipped
    raise V2MError("no General MIDI soundfont found; install fluid-soundfont-gm or pass --soundfont FILE")
