"""Diff-V2M: conditioner + DiT, the routing between them, and the v-objective.

The DiT sees three contexts. Semantic: the CLIP tokens followed by the seconds_start and
seconds_total tokens. Rhythmic: the rhythm tokens (predicted at inference; during training the
true rhythm with a probability that falls from 1 before ``schedule_start`` to 0 at
``schedule_end`` epochs, the paper's scheduled conditioning) followed by the same two tokens.
Emotional: the colour tokens, except in ``official`` mode, where, as in the published code,
it is the rhythmic context again and colour never reaches the DiT.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .conditioning import Conditioner, Conditions
from .config import DiffV2MConfig
from .dit import Contexts, DiT
from .layers import CrossAttention, SelfAttention, SwiGLU


def p_true_rhythm(epoch: int, start: int = 10, end: int = 30) -> float:
    """Probability that the DiT sees the true rhythm at ``epoch`` (0-based) during training."""
    if epoch < start:
        return 1.0
    return max(0.0, 1.0 - (epoch - start) / (end - start))


class DiffV2M(nn.Module):
    """The trainable Diff-V2M: :class:`Conditioner` + :class:`DiT`, with the routing of conditions
    into the DiT's contexts (:meth:`contexts`) and the training objective (:meth:`training_loss`).
    The VAE is apart (:class:`~.vae.OfficialVAE`); sampling: :mod:`.sampling`."""

    def __init__(self, config: DiffV2MConfig):
        super().__init__()
        self.config = config
        self.conditioner = Conditioner(config)
        self.dit = DiT(config)
        self._init_as_published()

    @torch.no_grad()
    def _init_as_published(self) -> None:
        """The published initialisation for training from scratch: every residual branch's output
        projection (and the DiT's 1x1 convolutions) starts at zero, so each block starts as the
        identity; then every DiT parameter is halved."""
        for module in self.modules():
            if isinstance(module, (SelfAttention, CrossAttention)):
                nn.init.zeros_(module.out.weight)
            elif isinstance(module, SwiGLU):
                nn.init.zeros_(module.out.weight)
                nn.init.zeros_(module.out.bias)
        nn.init.zeros_(self.dit.pre_conv.weight)
        nn.init.zeros_(self.dit.post_conv.weight)
        for p in self.dit.parameters():
            p.mul_(0.5)

    def contexts(self, cond: Conditions, use_true: torch.Tensor | None = None) -> tuple[Contexts, torch.Tensor]:
        """The DiT's contexts and global condition; ``use_true`` [B] bool picks the true rhythm
        per item (training), else the predicted rhythm is used."""
        timing = torch.cat([cond.seconds_start, cond.seconds_total], 1)
        ones = cond.semantic_mask.new_ones(timing.shape[:2])
        rhythm, rhythm_mask = cond.predicted_tokens, cond.semantic_mask
        if use_true is not None and cond.true_tokens is not None:
            rhythm = torch.where(use_true[:, None, None], cond.true_tokens, rhythm)
            rhythm_mask = torch.where(use_true[:, None], cond.true_mask, rhythm_mask)
        semantic = torch.cat([cond.semantic, timing], 1)
        semantic_mask = torch.cat([cond.semantic_mask, ones], 1)
        rhythm, rhythm_mask = torch.cat([rhythm, timing], 1), torch.cat([rhythm_mask, ones], 1)
        if self.config.official:
            color, color_mask = rhythm, rhythm_mask
        else:
            color, color_mask = cond.color, cond.color_mask
        return Contexts(semantic, semantic_mask, rhythm, rhythm_mask, color, color_mask), cond.global_cond

    def contexts_for(self, batch: dict) -> tuple[Conditions, Contexts, torch.Tensor]:
        """The conditions of ``batch`` and, from them, the DiT's contexts and global condition with
        the predicted rhythm, as at inference (sampling, and validation)."""
        cond = self.conditioner(batch)
        return (cond, *self.contexts(cond))

    def forward(self, x: torch.Tensor, t: torch.Tensor, ctx: Contexts, global_cond: torch.Tensor,
                cfg_scale: float = 1.0) -> torch.Tensor:
        return self.dit(x, t, ctx, global_cond, cfg_scale)

    def training_loss(self, batch: dict, latents: torch.Tensor, epoch: int = 0,
                      generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The paper's objective on one batch: v-prediction MSE at a uniform random t, with
        per-stream condition dropout, plus the rhythm predictor's MSE to the true rhythm over
        real seconds (the published code's loss only ever counted batch items 0 and 1)."""
        tr = self.config.training
        device = latents.device
        B = latents.shape[0]
        cond = self.conditioner(batch)
        use_true = torch.rand(B, generator=generator, device=device) < p_true_rhythm(
            epoch, tr.schedule_start, tr.schedule_end)
        ctx, global_cond = self.contexts(cond, use_true)
        if tr.cfg_dropout > 0:
            def drop(c):
                keep = torch.rand(B, 1, 1, generator=generator, device=device) >= tr.cfg_dropout
                return c * keep
            ctx = ctx.map(drop)
        t = torch.rand(B, generator=generator, device=device)
        alpha, sigma = (t * math.pi / 2).cos()[:, None, None], (t * math.pi / 2).sin()[:, None, None]
        noise = torch.randn(latents.shape, generator=generator, device=device, dtype=latents.dtype)
        v = self.dit(latents * alpha + noise * sigma, t, ctx, global_cond)
        target = noise * alpha - latents * sigma
        losses = {"diffusion": ((v.float() - target.float()) ** 2).mean()}
        if cond.true_rhythm is not None:
            losses["rhythm"] = rhythm_loss(cond)
        losses["loss"] = sum(losses.values())
        return losses


def rhythm_loss(cond: Conditions) -> torch.Tensor:
    """The rhythm predictor's MSE to the true rhythm, over every clip's real seconds."""
    m = cond.true_mask.float()[..., None]
    err = (cond.predicted_rhythm.float() - cond.true_rhythm.float()) ** 2 * m
    return err.sum() / (m.sum() * err.shape[-1]).clamp(min=1)
