"""What made a soundtrack: written into the scored video's metadata and beside it as
``<name>.json``, so that anyone who finds the file can tell how it was made and under which
terms its music may be used.

The record names v2m's version, the model, the weights it ran with, the style, key and tempo the
music has, the seed, the controls, the soundfont, the part of the video scored, where speech was
found (with ``--keep-speech``) and the licence terms that come with the weights. The composer uses no trained weights (its statistics are counted
from the music21 corpus's public-domain tunes), so its music carries no model licence; the
neural models' music comes with the terms of their weights, which v2m names here and points to
where it can (a licence file beside local weights).
"""

from __future__ import annotations

import glob
import json
import os
from datetime import datetime, timezone

from .controls import Controls
from .version import __version__

FORMAT = "v2m-provenance"
VERSION = 1

# The terms that come with each model's weights, as their publishers state them.
LICENCES = {
    "composer": "none: the composer uses no trained weights (its melodic statistics are counted from the "
                "public-domain folk tunes and chorales of the music21 corpus); the music is yours to use",
    "diffv2m": "Diff-V2M decodes its music with the Stable Audio Open 1.0 VAE, whose weights come under the "
               "Stability AI Community License (LICENSE.md in stabilityai/stable-audio-open-1.0 on the Hugging "
               "Face hub; read it before commercial use); the Diff-V2M weights come under their publisher's terms",
    "stad": "ControllableV2M is a MusicGen language model decoding with EnCodec: Meta's published MusicGen and "
            "EnCodec 32 kHz weights come under CC-BY-NC 4.0 (non-commercial use only), and a model trained from "
            "them keeps those terms",
}
# Where the public terms of each model's default weights are, for the record.
LICENCE_LINKS = {
    "diffv2m": ["https://huggingface.co/stabilityai/stable-audio-open-1.0/blob/main/LICENSE.md"],
    "stad": ["https://huggingface.co/facebook/musicgen-small", "https://creativecommons.org/licenses/by-nc/4.0/"],
}
SOUNDFONT_LICENCES = {
    "MuseScore_General": "MIT (MuseScore General by S. Christian Collins)",
    "FluidR3_GM": "MIT (FluidR3 GM by Frank Wen)",
    "TimGM6mb": "GPL-2.0 (TimGM6mb by Tim Brechbill, shipped with pretty-midi)",
}


def licence_files(source: str | None) -> list[str]:
    """Licence files beside local weights (``LICENSE*``, ``LICENCE*`` in the folder and one level
    down); none for a hub id or a missing path."""
    if not source or not os.path.exists(source):
        return []
    folder = source if os.path.isdir(source) else os.path.dirname(os.path.abspath(source))
    found = []
    for pattern in ("LICEN[CS]E*", "*/LICEN[CS]E*"):
        found += glob.glob(os.path.join(folder, pattern))
    return sorted(os.path.abspath(p) for p in found)


def soundfont_licence(path: str | None) -> str | None:
    if not path:
        return None
    name = os.path.basename(path)
    return next((terms for stem, terms in SOUNDFONT_LICENCES.items() if name.startswith(stem)),
                "the soundfont's own terms")


def controls_record(controls: Controls) -> dict:
    return {
        "music": [f"{c.feature},{c.weight:g}" for c in controls.music],
        "video": [f"{c.shot},{c.obj},{c.feature},{c.weight:g}" for c in controls.video],
        "tempo": controls.tempo,
        "key": controls.key,
    }


def record(*, source: str, model: str, generator, info: dict, seed: int, controls: Controls,
           span: tuple[float, float] | None, duration: float, mix: float, lufs: float,
           speech: list[tuple[float, float]] | None = None, duck_db: float | None = None) -> dict:
    """The provenance of one scored video, JSON-ready."""
    weights = getattr(getattr(generator, "pipeline", None), "source", None)
    soundfont = info.get("soundfont") or getattr(generator, "soundfont", None)
    return {
        "format": FORMAT,
        "version": VERSION,
        "made_by": f"v2m {__version__}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": os.path.basename(source),
        "duration": round(float(duration), 3),
        "scored": None if span is None else [round(float(span[0]), 3), round(float(span[1]), 3)],
        "model": model,
        "weights": weights,
        "seed": int(seed),
        "controls": controls_record(controls),
        "music": {k: info[k] for k in ("style", "key", "bpm", "sampler", "steps", "cfg", "windows") if k in info},
        "soundfont": os.path.basename(soundfont) if soundfont else None,
        "soundfont_licence": soundfont_licence(soundfont),
        "licence": LICENCES[model],
        "licence_links": LICENCE_LINKS.get(model, []),
        "licence_files": licence_files(weights),
        "mix": {"original_level": mix, "loudness_lufs": lufs, "duck_db": duck_db},
        "speech": None if speech is None else [[round(float(a), 3), round(float(z), 3)] for a, z in speech],
    }


def summary(rec: dict) -> str:
    """One line for the container's ``comment``: starts with v2m's mark, then what made the music."""
    parts = [rec["made_by"], rec["model"]]
    music = rec["music"]
    parts += [str(music[k]) for k in ("style", "key") if music.get(k)]
    parts.append(f"seed {rec['seed']}")
    if rec["weights"]:
        parts.append(f"weights {rec['weights']}")
    parts.append(f"licence: {rec['licence'].split(':')[0] if rec['model'] == 'composer' else rec['licence']}")
    return "; ".join(parts)


def write(path: str, rec: dict) -> None:
    """The sidecar: ``rec`` as indented JSON (the caller makes the write atomic)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(rec, f, indent=2)
        f.write("\n")
