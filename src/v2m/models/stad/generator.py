"""ControllableV2M behind v2m's generator interface: objects -> tokens -> audio, any length.

The video is decomposed once into shots and objects (:mod:`v2m.analysis.objects`). Music is
generated in windows of ``window`` seconds: the first from scratch, each next one continuing
from the last ``overlap`` seconds of tokens before it (they are its prompt, so the music runs on
without a seam) and conditioned on the objects of its own seconds. The result is exactly the
requested duration: round(duration x 50) token frames, decoded by EnCodec and cut to the sample.
Controls (``--video-control``, ``--music-control``) act on the inputs as ControllableV2M defines
them; guidance on the video conditions is ``cfg_scale``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import default_collate

from ...analysis.objects import DEFAULT_SAM, ObjectDecomposer
from ...analysis.shot_objects import StadShot
from ...errors import V2MError
from ..base import GeneratedMusic, GenerationRequest, normalised_music
from ..cards import MODELS, StadOptions
from .inputs import window_inputs
from .pipeline import StadPipeline


def plan_windows(duration: float, window: int, overlap: int, frame_rate: int) -> list[tuple[int, int, int]]:
    """(start second, frames to generate, prompt frames) per window covering round(duration x
    frame_rate) frames; each window after the first starts ``overlap`` seconds before the end of
    the previous one and takes those frames as its prompt."""
    total = int(round(duration * frame_rate))
    plan, start, done = [], 0, 0
    while done < total:
        frames = min(window * frame_rate, total - start * frame_rate)
        prompt = done - start * frame_rate
        plan.append((start, frames, prompt))
        done = start * frame_rate + frames
        start = start + window - overlap
    return plan


class StadGenerator:
    """ControllableV2M for a video of any length (see the module docstring)."""

    card = MODELS["stad"]
    name = card.name
    embedder = None  # its semantics are per object, from the decomposition's own CLIP

    def __init__(self, options: StadOptions = StadOptions(), device: str = "auto", window: int = 30,
                 overlap: int = 10, pipeline: StadPipeline | None = None, decompose=None):
        if pipeline is None and not options.checkpoint:
            raise V2MError("ControllableV2M needs --checkpoint (a folder from `v2m train stad`; the paper "
                           "released no weights)")
        self.pipeline = pipeline or StadPipeline.load(options.checkpoint, device=device)
        self.cfg_scale, self.window, self.overlap = options.cfg_scale, window, overlap
        self._decompose = decompose
        if decompose is None:  # SAM and CLIP load now: missing weights fail before any video is read
            self.objects = ObjectDecomposer(options.sam or DEFAULT_SAM, options.clip or "stad",
                                            device=str(self.pipeline.device))
            clip, want = self.objects.embedder, self.pipeline.config.video.semantic_dim
            if clip.dim != want:
                raise V2MError(f"CLIP {clip.source} gives {clip.dim} values; this model was trained on "
                               f"{want} (ControllableV2M uses CLIP ViT-L/14-336: --clip stad)")

    def decompose(self, analysis) -> list[StadShot]:
        """The video's shots and objects, from its analysis."""
        if self._decompose is not None:
            return self._decompose(analysis)
        return self.objects.of_analysis(analysis, progress=True)

    @torch.no_grad()
    def generate(self, request: GenerationRequest) -> GeneratedMusic:
        p = self.pipeline
        cfg = p.config
        fr, sr = cfg.lm.frame_rate, cfg.sample_rate
        shots = self.decompose(request.analysis)
        g = torch.Generator().manual_seed(request.seed)
        tokens = None
        plan = plan_windows(request.duration, self.window, self.overlap, fr)
        for start, frames, prompt_frames in plan:
            item = window_inputs(shots, start, math.ceil(frames / fr), cfg.video.max_shots, cfg.video.n_objects,
                                 cfg.video.max_seconds)
            batch = {k: v.to(p.device) for k, v in default_collate([item]).items()}
            prompt = None if tokens is None or prompt_frames <= 0 else tokens[..., -prompt_frames:]
            window_tokens = p(batch, frames=frames, cfg_scale=self.cfg_scale, video_controls=request.controls.video,
                              music_controls=request.controls.music, prompt=prompt, generator=g)
            tokens = window_tokens if tokens is None else torch.cat([tokens, window_tokens[..., prompt_frames:]], -1)
        audio = p.codec.decode({"codes": tokens[0].cpu().numpy()})
        n = int(round(request.duration * sr))
        audio = np.pad(audio, ((0, 0), (0, max(0, n - audio.shape[1]))))[:, :n]
        stereo = np.repeat(audio[:1], 2, 0).astype(np.float32)
        return normalised_music(stereo, sr, {"model": "stad", "shots": len(shots), "frames": int(tokens.shape[-1]),
                                             "windows": len(plan), "cfg_scale": self.cfg_scale, "weights": p.source})
