"""A ready ControllableV2M: config, model and the EnCodec that turns its tokens into audio.

Our folder: ``config.json`` (:meth:`StadConfig.to_dict`), ``model.safetensors`` (video encoder,
heads, condition projection, LM, alignment module) and ``encodec/`` (transformers
``EncodecModel``; when absent, MusicGen's ``facebook/encodec_32khz`` is loaded from the hub or
its cache). Nothing is unpickled. The official code released no weights, so there is no
published checkpoint to convert.

Generation is one function, :func:`sample_tokens` (conditions -> the LM's sampling), which the
pipeline's call and training's audio samples both use; its inputs are made by
:func:`.inputs.window_inputs`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from ...codecs import ENCODEC_DEFAULT, EncodecCodec
from ...controls import MusicControl, VideoControl
from ...fsutil import atomic_dir
from ...errors import V2MError, WeightsUnavailable
from ...weights import load_matching, read_state_dict, resolve_device
from .config import StadConfig
from .model import Stad


@torch.no_grad()
def sample_tokens(model: Stad, batch: dict, *, frames: int, cfg_scale: float = 3.0,
                  video_controls: Sequence[VideoControl] = (), music_controls: Sequence[MusicControl] = (),
                  prompt: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """EnCodec tokens [B, 4, frames] for the object streams of ``batch`` (collated
    :func:`.inputs.window_inputs` items; ``mask``, else ``time_mask``, marks the real seconds):
    ControllableV2M's one generation, which inference and the training samples share. Guidance
    ``cfg_scale`` on the video conditions (1: none); ``prompt`` [B, 4, P]: tokens to continue."""
    # 1. the condition tokens after the controls (and, with guidance, the unconditional ones)
    conditions, mask, _ = model.conditions_for(batch, video_controls, music_controls, guidance=cfg_scale != 1.0)
    # 2. the LM's sampling
    return model.generate(conditions, mask, frames, cfg_scale, prompt=prompt, generator=generator)


@dataclass
class StadPipeline:
    config: StadConfig
    model: Stad
    codec: EncodecCodec
    source: str = ""

    def __call__(self, batch: dict, *, frames: int, cfg_scale: float = 3.0,
                 video_controls: Sequence[VideoControl] = (), music_controls: Sequence[MusicControl] = (),
                 prompt: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Tokens for the model inputs ``batch``: :func:`sample_tokens` (its arguments) with this
        pipeline's model; :meth:`EncodecCodec.decode` turns them into audio."""
        return sample_tokens(self.model, batch, frames=frames, cfg_scale=cfg_scale, video_controls=video_controls,
                             music_controls=music_controls, prompt=prompt, generator=generator)

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
