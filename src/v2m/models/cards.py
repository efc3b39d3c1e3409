"""What each generator takes and gives, known before any weights load.

A :class:`ModelCard` names a model's options (a typed, validated dataclass per model, each field
carrying the command-line flag that sets it), the controls it honours and a one-line summary
of what it made. The command line and the web app build their choices from these cards; an
option or control a model does not take is one clear line, never silently dropped.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Callable

from ..controls import Controls
from ..errors import V2MError

SAMPLER_NAMES = ("dpm", "ddim")  # v2m.models.diffv2m.sampling.SAMPLERS, without importing torch


def _flag(name: str, default=None):
    return field(default=default, metadata={"flag": name})


def _finite(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise V2MError(f"{name} must be a finite number, got {value!r}")


@dataclass(frozen=True)
class ComposerOptions:
    soundfont: str | None = _flag("--soundfont")  # a General MIDI .sf2 or .sf3; None: the best one installed
    style: str | None = _flag("--style")  # one of composer.styles.STYLES; None: chosen from the picture

    def __post_init__(self):
        from .composer.styles import STYLES  # plain data: no model code, no weights

        if self.style is not None and self.style not in STYLES:
            raise V2MError(f"--style must be one of {', '.join(STYLES)} (--style list describes them), "
                           f"got {self.style!r}")


@dataclass(frozen=True)
class DiffV2MOptions:
    checkpoint: str | None = _flag("--checkpoint")  # our folder, the official .ckpt or a hub id
    config: str | None = _flag("--config")  # the official checkpoint's config when it is not beside it
    sampler: str = _flag("--sampler", "dpm")
    steps: int | None = _flag("--steps")  # None: the sampler's default (50 dpm, 250 ddim)
    cfg_scale: float = _flag("--cfg", 3.0)
    clip: str | None = _flag("--clip")  # the CLIP it was trained with; None: ViT-B/32

    def __post_init__(self):
        if self.sampler not in SAMPLER_NAMES:
            raise V2MError(f"--sampler must be one of {', '.join(SAMPLER_NAMES)}, got {self.sampler!r}")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise V2MError(f"--steps must be a whole number of at least 1, got {self.steps!r}")
        _finite("--cfg", self.cfg_scale)


@dataclass(frozen=True)
class StadOptions:
    checkpoint: str | None = _flag("--checkpoint")  # a folder from `v2m train stad` (required)
    cfg_scale: float = _flag("--cfg", 3.0)  # guidance on the video conditions; 1 = none
    clip: str | None = _flag("--clip")  # None: ViT-L/14-336, as the paper
    sam: str | None = _flag("--sam")  # None: facebook/sam-vit-base

    def __post_init__(self):
        _finite("--cfg", self.cfg_scale)


def option_flags(options: type) -> dict[str, str]:
    """``{field: flag}`` of an options dataclass."""
    return {f.name: f.metadata["flag"] for f in fields(options)}


# The controls a model can honour: music controls (pitch, chroma, loudness, spectral), video
# controls on motion, colour and semantics, those on objects (area, position), tempo and key.
CONTROL_KINDS = ("music", "video", "objects", "tempo", "key")


@dataclass(frozen=True)
class ModelCard:
    name: str
    title: str  # what it is, for --help and the web app
    options: type  # its options dataclass
    controls: tuple[str, ...]  # of CONTROL_KINDS
    describe: Callable[[dict], str]  # GeneratedMusic.info -> one line on what it made
    stems: bool = False  # whether its music comes as parts (the composer's Stems), for --stems

    @property
    def flags(self) -> dict[str, str]:
        return option_flags(self.options)

    def make_options(self, **given) -> object:
        """The options object from keyword options (None: the default), or one line naming the
        flags this model does not take and those it does."""
        given = {k: v for k, v in given.items() if v is not None}
        flags = self.flags
        refused = [k for k in given if k not in flags]
        if refused:
            every = {f: fl for card in MODELS.values() for f, fl in card.flags.items()}
            raise V2MError(f"--model {self.name} does not take {', '.join(every.get(k, k) for k in refused)} "
                           f"(it takes {', '.join(flags.values())})")
        return self.options(**given)

    def ignored_controls(self, controls: Controls) -> list[str]:
        """The kinds of control in ``controls`` that this model does not honour."""
        given = {
            "music": bool(controls.music),
            "video": any(c.feature not in ("area", "position") for c in controls.video),
            "objects": any(c.feature in ("area", "position") for c in controls.video),
            "tempo": controls.tempo is not None,
            "key": controls.key is not None,
        }
        return [kind for kind in CONTROL_KINDS if given[kind] and kind not in self.controls]


def _composer_summary(info: dict) -> str:
    soundfont = f", soundfont {os.path.basename(info['soundfont'])}" if info.get("soundfont") else ""
    return f"{info.get('key', '')}, {info.get('bpm', '')} BPM, {info.get('style', '')}{soundfont}"


def _diffv2m_summary(info: dict) -> str:
    return (f"{info.get('bpm', '')} BPM, {info.get('windows', 1)} window(s), {info.get('steps')} "
            f"{info.get('sampler')} steps")


def _stad_summary(info: dict) -> str:
    return (f"{info.get('bpm', '')} BPM, {info.get('shots')} shot(s), {info.get('windows', 1)} window(s), "
            f"{info.get('frames')} token frames")


MODELS: dict[str, ModelCard] = {
    "composer": ModelCard("composer", "the offline composer (default): no network, no GPU", ComposerOptions,
                          ("music", "video", "tempo", "key"), _composer_summary, stems=True),
    "diffv2m": ModelCard("diffv2m", "Diff-V2M (AAAI 2026): a latent diffusion model", DiffV2MOptions, (),
                         _diffv2m_summary),
    "stad": ModelCard("stad", "ControllableV2M (ACM MM 2025): a MusicGen language model on shots and objects",
                      StadOptions, ("music", "video", "objects"), _stad_summary),
}

CONTROL_FLAGS = {"music": "--music-control", "video": "--video-control move/color/semantic",
                 "objects": "--video-control area/position", "tempo": "--tempo", "key": "--key"}


def card(name: str) -> ModelCard:
    if name not in MODELS:
        raise V2MError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    return MODELS[name]
