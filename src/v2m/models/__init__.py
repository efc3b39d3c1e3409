"""Music generators behind one interface (:mod:`v2m.models.base`) and a registry of them."""

from __future__ import annotations

from ..errors import V2MError
from .base import GeneratedMusic, GenerationRequest, Generator

GENERATORS = ("composer", "diffv2m", "stad")

# The options a user can give a generator, by keyword, with the command-line flag that sets each,
# and which generator takes which: an option given to a generator that does not take it is an
# error naming the flag, never silently dropped.
OPTION_FLAGS = {"checkpoint": "--checkpoint", "config": "--config", "soundfont": "--soundfont",
                "sampler": "--sampler", "steps": "--steps", "cfg_scale": "--cfg", "clip": "--clip", "sam": "--sam"}
ACCEPTS = {
    "composer": ("soundfont",),
    "diffv2m": ("checkpoint", "config", "sampler", "steps", "cfg_scale", "clip"),
    "stad": ("checkpoint", "cfg_scale", "clip", "sam"),
}


def check_options(name: str, options: dict) -> dict:
    """The options of ``options`` that were given (not None), or a :class:`V2MError` naming the
    flags that generator ``name`` does not take and those it does."""
    if name not in ACCEPTS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(GENERATORS)}")
    given = {k: v for k, v in options.items() if v is not None}
    refused = [k for k in given if k not in ACCEPTS[name]]
    if refused:
        takes = ", ".join(OPTION_FLAGS[k] for k in ACCEPTS[name])
        raise V2MError(f"--model {name} does not take {', '.join(OPTION_FLAGS.get(k, k) for k in refused)} "
                       f"(it takes {takes})")
    return given


def get_generator(name: str = "composer", *, device: str = "auto", **options) -> Generator:
    """The generator called ``name``, ready to use. ``options``: those of :data:`OPTION_FLAGS`
    that it takes (:data:`ACCEPTS`); None means its default."""
    given = check_options(name, options)
    if name == "composer":
        from .composer import Composer

        return Composer(**given)
    if name == "diffv2m":
        from .diffv2m.generator import DiffV2MGenerator

        return DiffV2MGenerator(device=device, **given)
    from .stad.generator import StadGenerator

    return StadGenerator(device=device, **given)


__all__ = ["ACCEPTS", "GENERATORS", "OPTION_FLAGS", "GeneratedMusic", "check_options", "GenerationRequest", "Generator", "get_generator"]
