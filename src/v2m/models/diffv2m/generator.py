"""Diff-V2M behind v2m's generator interface: any length, in windows joined by crossfades.

The model scores ``max_seconds`` (30 s) at a time. A video is cut into windows of that length
that overlap by ``overlap`` seconds; every window is conditioned on its own seconds of the
video (CLIP, colour, scene cuts, visual beats; seconds_start 0 and seconds_total its length),
made into model inputs by :func:`.inputs.window_inputs` as the training clips are. The pipeline
samples all windows as one batch from one seeded noise tensor and decodes them; they are joined
with equal-power crossfades over the overlaps. The beats of the result come from librosa's beat
tracker.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import default_collate

from ...errors import V2MError
from ..base import GeneratedMusic, GenerationRequest, normalised_music
from ..cards import MODELS, DiffV2MOptions
from .inputs import FEATURES, window_inputs
from .pipeline import OFFICIAL_REPO, DiffV2MPipeline
from .sampling import DEFAULT_STEPS


def window_starts(duration: float, window: int, overlap: int) -> list[int]:
    """Whole-second starts of windows of ``window`` seconds covering ``duration``, consecutive
    windows sharing ``overlap`` seconds; the last window is shifted back to end at the end."""
    if duration <= window:
        return [0]
    hop = window - overlap
    n = math.ceil((duration - overlap) / hop)
    starts = [k * hop for k in range(n)]
    starts[-1] = max(0, min(starts[-1], math.ceil(duration) - window))
    return sorted(set(starts))


def join_windows(pieces: list[np.ndarray], starts: list[int], sr: int, total: int) -> np.ndarray:
    """Overlap-add ``pieces`` [C, n_i] placed at ``starts`` seconds, with equal-power (sin/cos)
    crossfades across each overlap (two different pieces of music are uncorrelated, so their
    powers add: sin^2 + cos^2 = 1 keeps the loudness), into [C, total] samples."""
    out = np.zeros((pieces[0].shape[0], total), np.float32)
    for k, (piece, start) in enumerate(zip(pieces, starts)):
        a = start * sr
        n = min(piece.shape[1], total - a)
        w = np.ones(n, np.float32)
        if k > 0:  # fade in over the overlap with the previous window
            fade = min(n, max(0, (starts[k - 1] * sr + pieces[k - 1].shape[1]) - a))
            w[:fade] = np.sin(0.5 * np.pi * (np.arange(fade) + 0.5) / fade)
        if k + 1 < len(pieces):  # fade out over the overlap with the next window
            fade = min(n, max(0, a + n - starts[k + 1] * sr))
            if fade:
                w[n - fade:] *= np.cos(0.5 * np.pi * (np.arange(fade) + 0.5) / fade)
        out[:, a : a + n] += piece[:, :n] * w
    return out


class DiffV2MGenerator:
    """Diff-V2M for a video of any length (see the module docstring)."""

    card = MODELS["diffv2m"]
    name = card.name

    def __init__(self, options: DiffV2MOptions = DiffV2MOptions(), device: str = "auto", overlap: int = 4,
                 pipeline: DiffV2MPipeline | None = None, progress: bool = False):
        """``options.checkpoint`` and ``options.config``: :meth:`DiffV2MPipeline.load`. The
        checkpoint's CLIP and colour widths are checked against what the analysis gives before
        any video is read."""
        from ...analysis.color import HIST_SIZE
        from ...analysis.semantic import ALIASES, ClipEmbedder

        self.pipeline = pipeline or DiffV2MPipeline.load(options.checkpoint or OFFICIAL_REPO, device=device,
                                                         config=options.config)
        self.sampler, self.steps = options.sampler, options.steps or DEFAULT_STEPS[options.sampler]
        self.cfg_scale, self.overlap, self.progress = options.cfg_scale, overlap, progress
        colour = self.pipeline.config.conditioning.color_dim
        if colour != HIST_SIZE:
            raise V2MError(f"the model takes {colour}-value colour features but v2m's analysis gives {HIST_SIZE}-value "
                           f"colour histograms", self.pipeline.source)
        # the CLIP the model was trained on, whose per-second embeddings its analysis needs
        self.embedder = ClipEmbedder(options.clip or ALIASES["diffv2m"], device=device)
        expected = self.pipeline.config.conditioning.semantic_dim
        if self.embedder.dim != expected:
            raise V2MError(f"CLIP gives {self.embedder.dim}-d embeddings but the model takes {expected}-d "
                           f"(pass the CLIP it was trained with, --clip)", self.embedder.source)

    @torch.no_grad()
    def generate(self, request: GenerationRequest) -> GeneratedMusic:
        analysis = request.analysis
        video = analysis.meta.get("source", {}).get("path")
        if analysis.clip is None:
            raise V2MError("Diff-V2M needs CLIP semantics, and the analysis has none", video)
        colour, expected = np.shape(analysis.color_hist)[-1], self.pipeline.config.conditioning.color_dim
        if colour != expected:
            raise V2MError(f"the analysis has {colour}-value colour histograms but the model "
                           f"{self.pipeline.source} takes {expected}", video)
        p = self.pipeline
        T, sr = p.config.conditioning.max_seconds, p.config.sample_rate
        starts = window_starts(request.duration, T, self.overlap)
        features = {name: getattr(analysis, name) for name in FEATURES}
        items = [window_inputs(features, s, int(min(T, math.ceil(request.duration - s - 1e-6))), T) for s in starts]
        batch = {k: v.to(p.device) for k, v in default_collate(items).items()}
        audio = p(batch, generator=torch.Generator().manual_seed(request.seed), sampler=self.sampler,
                  steps=self.steps, cfg_scale=self.cfg_scale).cpu().numpy()
        pieces = [a[:, : int(round(min(T, request.duration - s) * sr))] for a, s in zip(audio, starts)]
        joined = join_windows(pieces, starts, sr, int(round(request.duration * sr)))
        return normalised_music(joined, sr, {"model": "diffv2m", "windows": len(starts), "sampler": self.sampler,
                                             "steps": self.steps, "cfg": self.cfg_scale, "weights": p.source})
