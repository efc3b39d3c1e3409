"""Semantics: one CLIP image embedding per second, through transformers.

The embedding is CLIP's projected image embedding (``image_embeds`` of
``CLIPVisionModelWithProjection``, not L2-normalised), computed from the RGB frame after
CLIP's own preprocessing (shortest side resized, centre crop, normalisation). Diff-V2M uses
ViT-B/32 (512 values); ControllableV2M uses ViT-L/14 at 336 px (768 values).

Weights come from a hub id or a local directory (``save_pretrained`` layout), through
:func:`v2m.weights.load_pretrained`; when they cannot be loaded,
:class:`~v2m.errors.WeightsUnavailable` says what to do.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import WeightsUnavailable
from ..weights import hub_reachable, load_pretrained, resolve_device

ALIASES = {
    "diffv2m": "openai/clip-vit-base-patch32",
    "stad": "openai/clip-vit-large-patch14-336",
}
DEFAULT_MODEL = ALIASES["diffv2m"]


def resolve(source: str) -> str:
    """A hub id or local directory for ``source`` (which may be an alias: diffv2m, stad)."""
    return ALIASES.get(source, source)


def _image_processor(source: str, image_size: int):
    try:  # transformers >= 5 names the PIL-backed processor explicitly (no torchvision needed)
        from transformers import CLIPImageProcessorPil as Processor
    except ImportError:  # pragma: no cover - transformers 4.x
        from transformers import CLIPImageProcessor as Processor
    local = os.path.isdir(source)
    own = os.path.join(source, "preprocessor_config.json")
    try:
        return Processor.from_pretrained(source, local_files_only=local or not hub_reachable())
    except OSError as e:
        if local and os.path.isfile(own):  # the folder's own recipe is broken: not to be replaced silently
            raise WeightsUnavailable(f"the CLIP preprocessing config cannot be read ({' '.join(str(e).split())[:120]})",
                                     own) from None
        # A directory with model weights but no preprocessor_config.json: CLIP's standard recipe.
        return Processor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})


class ClipEmbedder:
    """A frozen CLIP vision tower that embeds batches of RGB frames."""

    def __init__(self, source: str = DEFAULT_MODEL, device: str = "auto", batch_size: int = 16, model=None,
                 flag: str = ""):
        """``flag``: the command's option that turns CLIP off, named when the weights cannot be
        loaded (none by default: the caller knows which command it serves)."""
        import torch
        from transformers import CLIPVisionModelWithProjection

        self.source = resolve(source)
        self.device = device = resolve_device(device)
        self.batch_size = batch_size
        if model is None:  # a ready CLIPVisionModelWithProjection may be passed instead
            model = load_pretrained(CLIPVisionModelWithProjection, self.source, "CLIP", flag=flag)
        self.model = model.to(device).eval()
        self.dtype = next(self.model.parameters()).dtype
        self.processor = _image_processor(self.source, self.model.config.image_size)
        self.dim = int(self.model.config.projection_dim)
        self._torch = torch

    def __call__(self, frames: list[np.ndarray]) -> np.ndarray:
        """Embed RGB uint8 frames -> ``[N, dim]`` float32."""
        torch = self._torch
        out = []
        for i in range(0, len(frames), self.batch_size):
            pixels = self.processor(images=frames[i : i + self.batch_size], return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                emb = self.model(pixel_values=pixels.to(self.device, self.dtype)).image_embeds
            out.append(emb.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
