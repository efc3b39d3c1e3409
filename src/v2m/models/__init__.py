"""Music generators behind one interface (:mod:`v2m.models.base`), each described by a card
(:mod:`v2m.models.cards`: its options, the controls it honours, a summary of its result)."""

from __future__ import annotations

from .base import GeneratedMusic, GenerationRequest, Generator
from .cards import MODELS, ModelCard, card

GENERATORS = tuple(MODELS)


def get_generator(name: str = "composer", *, device: str = "auto", **options) -> Generator:
    """The generator called ``name``, ready to use. ``options``: the fields of its card's options
    (None means the default); one it does not take is a :class:`v2m.errors.V2MError`."""
    opts = card(name).make_options(**options)
    if name == "composer":
        from .composer import Composer

        return Composer(opts)
    if name == "diffv2m":
        from .diffv2m.generator import DiffV2MGenerator

        return DiffV2MGenerator(opts, device=device)
    from .stad.generator import StadGenerator

    return StadGenerator(opts, device=device)


__all__ = ["GENERATORS", "MODELS", "GeneratedMusic", "GenerationRequest", "Generator", "ModelCard", "card",
           "get_generator"]
