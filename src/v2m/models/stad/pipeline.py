"""A ready ControllableV2M: config, model and the EnCodec that turns its tokens into audio.

Our folder: ``config.json`` (:meth:`StadConfig.to_dict`), ``model.safetensors`` (video encoder,
heads, condition projection, LM, alignment module) and ``encodec/`` (transformers
``EncodecModel``; when absent, MusicGen's ``facebook/encodec_32khz`` is loaded from the hub or
its cache). Nothing is unpickled. The official code released no weights, so there is no
published checkpoint to convert.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ...codecs import ENCODEC_DEFAULT, EncodecCodec
from ...fsutil import atomic_dir
from ...errors import V2MError, WeightsUnavailable
from .config import StadConfig
from .model import Stad


@dataclass
class StadPipeline:
    config: StadConfig
    model: Stad
    codec: EncodecCodec
    source: str = ""

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def save(self, folder: str | os.PathLike) -> None:
        """Write the pipeline as a folder, built beside it and moved into place."""
        from safetensors.torch import save_file

        with atomic_dir(folder) as tmp:
            (tmp / "config.json").write_text(json.dumps(self.config.to_dict(), indent=1))
            state = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
            save_file(state, str(tmp / "model.safetensors"), metadata={"format": "v2m-stad"})
            self.codec.model.save_pretrained(tmp / "encodec")

    @classmethod
    def load(cls, source: str, device: str = "auto") -> "StadPipeline":
        from ...weights import load_matching, read_state_dict
        from ..diffv2m.pipeline import resolve_device

        folder = Path(os.path.expanduser(source))
        if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
            if not folder.exists():
                raise WeightsUnavailable("no such folder for the ControllableV2M weights (train one with "
                                         "`v2m train stad`; no weights were published)", source)
            raise V2MError("is not a ControllableV2M folder (config.json and model.safetensors)", source)
        config = StadConfig.load(folder / "config.json")
        model = Stad(config)
        weights = str(folder / "model.safetensors")
        load_matching(model, read_state_dict(weights, "ControllableV2M"), "ControllableV2M", weights)
        dev = resolve_device(device)
        encodec = folder / "encodec"
        codec = EncodecCodec.load(str(encodec) if encodec.is_dir() else ENCODEC_DEFAULT, device=str(dev))
        return cls(config, model.eval().to(dev), codec, str(folder))

    from_pretrained = load
