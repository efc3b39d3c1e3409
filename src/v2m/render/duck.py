"""Ducking: the music's gain lowered wherever someone speaks, as a dialogue mixer rides it.

:func:`duck_gain` is the gain curve for any stretch of samples; :func:`duck` applies it. The
curve is a pure function of the sample's time, so a streaming render may ask for it block by
block and get exactly the samples one call for the whole soundtrack gives.

Around each span of speech ``(start, end)`` (seconds, from :func:`v2m.analysis.speech.speech_spans`):

- the music is fully down (``depth_db``, default -12 dB: speech stays clear and the music is
  still heard) from ``lead`` (0.2 s) before the first word to the end of the span, so the music
  is already down when the first word lands;
- it goes down over ``attack`` (0.3 s) before that, and comes back up over ``release`` (0.8 s)
  after the span; both ramps are raised cosines in decibels (no click, no corner: the slope is
  at most ``pi / 2 * |depth_db| / ramp`` dB per second);
- spans less than ``bridge`` (1.5 s) apart are one span: the music stays down through the pauses
  between sentences instead of pumping up in every breath.
"""

from __future__ import annotations

import numpy as np

DEPTH_DB = -12.0
ATTACK = 0.3  # seconds of the ramp down, ending LEAD before the speech
LEAD = 0.2  # seconds the music is fully down before the speech starts
RELEASE = 0.8  # seconds of the ramp back up after the speech ends
BRIDGE = 1.5  # spans closer than this (seconds) stay ducked between them


def _bridged(spans, bridge: float) -> np.ndarray:
    """The spans sorted as float64 [n, 2], those closer than ``bridge`` seconds merged."""
    out: list[list[float]] = []
    for a, z in sorted((float(a), float(z)) for a, z in spans if float(z) > float(a)):
        if out and a - out[-1][1] < bridge:
            out[-1][1] = max(out[-1][1], z)
        else:
            out.append([a, z])
    return np.asarray(out, np.float64).reshape(-1, 2)


def _ramp(u: np.ndarray) -> np.ndarray:
    """A raised cosine from 0 (``u <= 0``) to 1 (``u >= 1``)."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0.0, 1.0))


def duck_amount(spans, start_sample: int, n: int, sample_rate: int, *, attack: float = ATTACK,
                lead: float = LEAD, release: float = RELEASE, bridge: float = BRIDGE) -> np.ndarray:
    """How far the music is ducked at samples ``start_sample .. start_sample + n - 1``: 0 (not
    at all) to 1 (fully, under speech), float64 [n] (see the module docstring)."""
    t = (int(start_sample) + np.arange(int(n), dtype=np.float64)) / float(sample_rate)
    amount = np.zeros(len(t))
    if not len(t):
        return amount
    merged = _bridged(spans, bridge)
    before, after = lead + max(attack, 1e-9), max(release, 1e-9)
    # only the spans whose ramps reach into this block
    near = merged[(merged[:, 0] - before < t[-1]) & (merged[:, 1] + after > t[0])]
    for a, z in near:
        i, j = np.searchsorted(t, [a - before, z + after])
        u = t[i:j]
        down = _ramp((u - (a - before)) / max(attack, 1e-9))
        up = 1.0 - _ramp((u - z) / after)
        amount[i:j] = np.maximum(amount[i:j], np.minimum(down, up))
    return amount


def duck_gain(spans, start_sample: int, n: int, sample_rate: int, depth_db: float = DEPTH_DB, *,
              attack: float = ATTACK, lead: float = LEAD, release: float = RELEASE,
              bridge: float = BRIDGE) -> np.ndarray:
    """The music's gain at samples ``start_sample .. start_sample + n - 1`` of a soundtrack at
    ``sample_rate``, float32 [n]: 1.0 away from speech, ``10 ** (depth_db / 20)`` (default -12 dB,
    0.251) under it, raised-cosine ramps in decibels between (``attack`` 0.3 s ending ``lead``
    0.2 s before the speech, ``release`` 0.8 s after it); spans closer than ``bridge`` (1.5 s)
    stay ducked between them. ``spans`` are ``(start, end)`` seconds, in any order. The value of
    a sample depends only on its index, so a block-wise evaluation equals a one-piece one."""
    amount = duck_amount(spans, start_sample, n, sample_rate, attack=attack, lead=lead, release=release,
                         bridge=bridge)
    return (10.0 ** (float(depth_db) * amount / 20.0)).astype(np.float32)


def duck(audio: np.ndarray, spans, sample_rate: int, start_sample: int = 0, depth_db: float = DEPTH_DB,
         **ramps) -> np.ndarray:
    """``audio`` (float [channels, samples], starting at ``start_sample`` of the soundtrack) with
    :func:`duck_gain` applied; ``ramps`` are its ``attack``, ``lead``, ``release`` and ``bridge``."""
    gain = duck_gain(spans, start_sample, audio.shape[-1], sample_rate, depth_db, **ramps)
    return (audio * gain).astype(audio.dtype, copy=False)
