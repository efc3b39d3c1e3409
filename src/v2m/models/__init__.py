"""Music generators behind one interface (:mod:`v2m.models.base`) and a registry of them."""

from __future__ import annotations

from .base import GeneratedMusic, GenerationRequest, Generator

GENERATORS = ("composer", "diffv2m", "stad")


def get_generator(name: str = "composer", *, checkpoint: str | None = None, device: str = "auto",
                  soundfont: str | None = None, **options) -> Generator:
    """The generator called ``name``, ready to use. ``options`` go to neural generators
    (diffv2m: sampler, steps, cfg_scale, clip; stad: cfg_scale, sam, clip)."""
    if name == "composer":
        from .composer import Composer

        if checkpoint:
            raise ValueError("the composer takes no checkpoint (its statistics ship with v2m)")
        return Composer(soundfont=soundfont)
    if name == "diffv2m":
        from .diffv2m.generator import DiffV2MGenerator

        return DiffV2MGenerator(checkpoint, device=device, **{k: v for k, v in options.items() if v is not None})
    if name == "stad":
        from .stad.generator import StadGenerator

        return StadGenerator(checkpoint, device=device, **{k: v for k, v in options.items() if v is not None})
    raise ValueError(f"unknown model {name!r}; available: {', '.join(GENERATORS)}")


__all__ = ["GENERATORS", "GeneratedMusic", "GenerationRequest", "Generator", "get_generator"]
