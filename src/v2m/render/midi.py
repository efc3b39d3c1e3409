"""Scores placed in time: the score of a scored part moved to where that part is in the video."""

from __future__ import annotations

import copy

START = "video start"  # the marker a score (v2m.models.composer.score) puts where the video begins


def delay(midi, seconds: float):
    """A copy of ``midi`` (a ``mido.MidiFile``) that starts ``seconds`` later: a rest at its first
    tempo comes first, so every note, marker and tempo change moves by exactly ``seconds``. The
    score's ``video start`` marker, which now marks where the scored part begins, is renamed
    ``scored part start``, and a new ``video start`` marker goes where the video begins."""
    import mido

    if seconds <= 0:
        return midi
    out = copy.deepcopy(midi)
    tempo = next((m.tempo for m in out.tracks[0] if m.type == "set_tempo"), 500_000)  # MIDI's default
    rest = int(round(seconds * 1e6 / tempo * out.ticks_per_beat))
    for index, track in enumerate(out.tracks):
        now, placed = 0, []
        for i, m in enumerate(track):
            now += m.time
            leading = now == 0 and all(p.type in ("track_name", "set_tempo") for p in track[: i + 1])
            if m.type == "marker" and m.text == START:
                placed.append((now, mido.MetaMessage("marker", text=START)))  # where the video begins
                m = m.copy(text="scored part start")
            placed.append((now if leading else now + rest, m))  # the name and first tempo stay at 0
        placed.sort(key=lambda e: (e[0], e[1].type == "end_of_track"))
        before = 0
        track.clear()
        for at, m in placed:
            track.append(m.copy(time=at - before))
            before = at
    return out
