"""Music generators behind one interface (:mod:`v2m.models.base`) and a registry of them."""

from __future__ import annotations

from .base import GeneratedMusic, GenerationRequest, Generator

GENERATORS = ("composer",)  # the neural models (diffv2m, stad) join this list when they land


def get_generator(name: str = "composer", *, checkpoint: str | None = None, device: str = "auto",
                  soundfont: str | None = None) -> Generator:
    """The generator called ``name``, ready to use."""
    if name == "composer":
        from .composer import Composer

        if checkpoint:
            raise ValueError("the composer takes no checkpoint (its statistics ship with v2m)")
        return Composer(soundfont=soundfont)
    raise ValueError(f"unknown model {name!r}; available: {', '.join(GENERATORS)}")


__all__ = ["GENERATORS", "GeneratedMusic", "GenerationRequest", "Generator", "get_generator"]
