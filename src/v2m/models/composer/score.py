"""A score (parts and notes on the beat grid), written as MIDI and rendered with FluidSynth.

The MIDI file carries the grid's tempo map (a ``set_tempo`` wherever the beat's length changes)
and a ``time_signature`` at every metre change (2/4, 3/4, 4/4), so a DAW shows the bars and the
beats as they are played and as they line up with the video's cuts. MIDI time 0 is the first bar
line, at or before the video's start; a marker ``video start`` shows where the video begins.

Controller events (:class:`Control`: the sustain pedal, expression, modulation ...) go into
the MIDI file on their part's track and into the render between the notes.

Rendering (:meth:`Score.render_stems`) plays each part on its own FluidSynth synth, in stereo,
panned, in the score's :class:`~.sound.Room`, through the soundfont :mod:`.sound` chooses, a
block at a time into a temporary file (:class:`v2m.blocks.Spool`), measuring its mid and side
loudness on the way; a pitched part that would lose more than 3 LU played in mono is narrowed
until it does not, as it is read back. :class:`Stems` reads the parts and their sum (the mix)
at any range, so no full-length copy is held; :meth:`Score.render_parts` and
:meth:`Score.render` are the same as arrays.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ...blocks import Spool, block_size
from ...loudness import LoudnessMeter
from ...workers import usable_cores
from .grid import BeatGrid
from .sound import MAX_MONO_LOSS, ROOMS, Room, find_soundfont, narrowed, narrowing_factor, open_synth
from ...theory import Key

TICKS_PER_BEAT = 480
DRUM_CHANNEL = 9


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


@dataclass(frozen=True)
class Control:
    """A MIDI controller change on one part: ``number`` 64 is the sustain pedal (value >= 64
    down), 11 expression, 1 modulation, and so on (General MIDI's controller numbers)."""

    time: float  # seconds on the video's clock
    part: int  # index into Score.parts
    number: int  # 0-127
    value: int  # 0-127

    def __post_init__(self) -> None:
        if not (0 <= self.number <= 127 and 0 <= self.value <= 127):
            raise ValueError(f"a MIDI controller number and value are 0-127, got {self.number} and {self.value}")


@dataclass
class Score:
    parts: list[Part]
    notes: list[Note]
    grid: BeatGrid
    key: Key
    duration: float
    sections: list[tuple[int, float, float]] = field(default_factory=list)  # (shot, start, end) by bars
    info: dict = field(default_factory=dict)
    controls: list[Control] = field(default_factory=list)  # in any order
    room: Room = ROOMS["room"]  # the reverb every part plays in
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
        counts = self.grid.counts  # beats from the first bar line to each beat
        for beat, length in self.grid.meter_changes():  # 4/4, 3/4, 2/4; 7/8 and 5/8 with an eighth
            numerator, denominator = (int(length), 4) if length == int(length) else (int(round(2 * length)), 8)
            meta.append((int(round(counts[beat] * TICKS_PER_BEAT)),
                         mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator)))
        previous = None
        for beat, (seconds, units) in enumerate(zip(np.diff(self.grid.times), self.grid.beat_units)):
            tempo = int(round(seconds / units * 1e6))  # microseconds per quarter note; the last holds after
            if tempo != previous:
                meta.append((int(round(counts[beat] * TICKS_PER_BEAT)), mido.MetaMessage("set_tempo", tempo=tempo)))
                previous = tempo
        midi.tracks.append(_track("v2m composer", meta))
        for p_index, part in enumerate(self.parts):
            events = [(0, mido.Message("control_change", channel=part.channel, control=10, value=part.pan)),
                      (0, mido.Message("control_change", channel=part.channel, control=91, value=part.reverb))]
            if not part.is_drum:
                events.append((0, mido.Message("program_change", channel=part.channel, program=part.program)))
            for c in self.controls:  # listed before the notes: at one tick after the note-offs (_track
                # puts those first) and before the note-ons, as in the render
                if c.part == p_index:
                    events.append((self._tick(c.time), mido.Message("control_change", channel=part.channel,
                                                                     control=c.number, value=c.value)))
            for n in self.notes:
                if n.part == p_index:
                    events.append((self._tick(n.start), mido.Message("note_on", channel=part.channel, note=n.pitch,
                                                                      velocity=n.velocity)))
                    events.append((max(self._tick(n.end), self._tick(n.start) + 1),
                                   mido.Message("note_off", channel=part.channel, note=n.pitch, velocity=0)))
            midi.tracks.append(_track(part.name, events))
        return midi

    # --- audio --------------------------------------------------------------------------

    def render_stems(self, soundfont: str, sample_rate: int = 44100, max_mono_loss: float | None = MAX_MONO_LOSS,
                     folder: str | None = None) -> "Stems":
        """Each part alone, in a temporary file in ``folder`` (None: the system's temporary
        folder): :class:`Stems`, ``round(duration * sample_rate)`` samples, all sample-aligned.
        Each part plays on its own synth (so nothing of one part, its reverb tail included,
        leaks into another's stem), the parts on as many threads as there are usable cores. A
        pitched part whose fold-down would lose more than ``max_mono_loss`` LU is narrowed
        (:func:`.sound.narrowing_factor`, measured as it is rendered; None: never);
        ``info["narrowed"]`` then maps its name to the factor its side signal is scaled by."""
        names = [p.name for p in self.parts]
        if len(set(names)) != len(names):
            raise ValueError(f"part names repeat: {names}")
        spools: list[Spool] = []

        def stem(index: int, synth: tuple[object, int]) -> float:
            meter = LoudnessMeter(sample_rate)
            spool = spools[index]

            def sink(block: np.ndarray) -> None:
                spool.write(block)
                mid = block.mean(axis=0, dtype=np.float32)
                meter.add(np.stack([mid, block[0] - mid]))

            self._play_part(index, *synth, sample_rate, sink)
            if max_mono_loss is None or self.parts[index].is_drum:
                return 1.0
            power = meter.power()
            return narrowing_factor(power[0], power[1], max_mono_loss)

        try:
            spools.extend(Spool(2, folder) for _ in self.parts)
            with contextlib.ExitStack() as stack:
                # Made one after another, here: the first synth of a process sets up tables that
                # all synths share, and one made at the same time on another thread would find
                # them half done. Loading is quick (dynamic sample loading); the samples are read
                # as each part selects its preset, on its own thread.
                synths = [stack.enter_context(open_synth(soundfont, sample_rate, self.room)) for _ in self.parts]
                with ThreadPoolExecutor(max(1, min(len(self.parts), usable_cores()))) as pool:
                    factors = list(pool.map(stem, range(len(self.parts)), synths))  # FluidSynth, filters: GIL-free
        except BaseException:
            for spool in spools:
                spool.close()
            raise
        self.info["narrowed"] = {name: round(f, 3) for name, f in zip(names, factors) if f < 1.0}
        return Stems(names, spools, factors, sample_rate, int(round(self.duration * sample_rate)))

    def render_parts(self, soundfont: str, sample_rate: int = 44100,
                     max_mono_loss: float | None = MAX_MONO_LOSS) -> dict[str, np.ndarray]:
        """:meth:`render_stems` as arrays: part name -> stereo float32 ``[2, round(duration *
        sample_rate)]``."""
        stems = self.render_stems(soundfont, sample_rate, max_mono_loss)
        try:
            return {name: stems.read_part(name, 0, stems.n) for name in stems.names}
        finally:
            stems.close()

    def render(self, soundfont: str, sample_rate: int = 44100) -> np.ndarray:
        """Stereo float32 audio ``[2, round(duration * sample_rate)]``: the sum of
        :meth:`render_parts`, in the parts' order."""
        stems = self.render_stems(soundfont, sample_rate)
        try:
            return stems.read(0, stems.n)
        finally:
            stems.close()

    def _play_part(self, index: int, synth, sfid: int, sample_rate: int, sink) -> None:
        """Part ``index`` alone on ``synth`` (its own): its notes and controller events in time
        order (at one instant: note-offs, then controller changes, then note-ons), handed to
        ``sink`` in consecutive stereo float32 blocks of at most :func:`v2m.blocks.block_size`
        from the first sample to the last. Until its first event a part is silent, and that
        stretch is not played (a late entry costs nothing)."""
        part = self.parts[index]
        ch = part.channel
        events = [(max(0.0, n.end), 0, "off", n.pitch, 0) for n in self.notes if n.part == index]
        events += [(max(0.0, c.time), 1, "cc", c.number, c.value) for c in self.controls if c.part == index]
        events += [(max(0.0, n.start), 2, "on", n.pitch, n.velocity) for n in self.notes if n.part == index]
        events.sort(key=lambda e: e[:2])  # stable: controller changes at one instant keep their order
        total = int(round(self.duration * sample_rate))
        size = block_size(sample_rate)
        pending: list[np.ndarray] = []  # played since the last block went out
        held = 0

        def emit(chunk: np.ndarray, last: bool = False) -> None:
            nonlocal held
            pending.append(chunk)
            held += chunk.shape[1]
            while held >= size or (last and held):
                joined = np.concatenate(pending, axis=1) if len(pending) > 1 else pending[0]
                sink(joined[:, :size])
                rest = joined[:, size:]
                pending[:] = [rest] if rest.shape[1] else []
                held = rest.shape[1]

        def silence(count: int) -> None:
            for start in range(0, count, size):
                emit(np.zeros((2, min(size, count - start)), np.float32))

        if not events:
            silence(total)
            emit(np.zeros((2, 0), np.float32), last=True)
            return
        synth.program_select(ch, sfid, 128 if part.is_drum else 0, 0 if part.is_drum else part.program)
        synth.cc(ch, 10, part.pan)
        synth.cc(ch, 91, part.reverb)
        pos = min(total, int(round(events[0][0] * sample_rate)))
        silence(pos)

        def render_until(at: int) -> None:
            nonlocal pos
            while pos < at:  # in blocks of at most one block
                n = min(at - pos, size)
                emit(synth.get_samples(n).reshape(-1, 2).T * np.float32(1 / 32768))
                pos += n

        for t, _, kind, a, b in events:
            render_until(min(total, int(round(t * sample_rate))))
            if kind == "on":
                synth.noteon(ch, a, b)
            elif kind == "off":
                synth.noteoff(ch, a)
            else:
                synth.cc(ch, a, b)
        render_until(total)
        emit(np.zeros((2, 0), np.float32), last=True)


class Stems:
    """A score's parts rendered (:meth:`Score.render_stems`): ``names`` in the score's order,
    each ``n`` samples at ``sample_rate`` in a temporary file, narrowed by its factor (see
    :func:`.sound.narrowed`) as it is read. A signal (:mod:`v2m.blocks`): :meth:`read` is the
    mix, the sum of the parts in their order, so the stems add up to it exactly. Close it to
    free the files."""

    channels = 2

    def __init__(self, names: list[str], spools: list[Spool], factors: list[float], sample_rate: int, n: int):
        self.names, self.factors, self.sample_rate, self.n = names, factors, sample_rate, n
        self._spools = dict(zip(names, spools))
        self._factors = dict(zip(names, factors))

    def read_part(self, name: str, start: int, stop: int) -> np.ndarray:
        """Samples ``start`` to ``stop`` of part ``name``, narrowed."""
        return narrowed(self._spools[name].read(start, stop), self._factors[name])

    def read(self, start: int, stop: int) -> np.ndarray:
        total = np.zeros((2, stop - start), np.float32)
        for name in self.names:
            total += self.read_part(name, start, stop)
        return total

    def close(self) -> None:
        for spool in self._spools.values():
            spool.close()


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
    """The key as MIDI's key signature names it (the usual spelling: Db major, but C# minor)."""
    if key.mode == "minor":
        return ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")[key.tonic] + "m"
    return ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")[key.tonic]


__all__ = ["DRUM_CHANNEL", "Control", "Note", "Part", "Room", "Score", "Stems", "find_soundfont"]
