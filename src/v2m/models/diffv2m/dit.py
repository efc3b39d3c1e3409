"""The Diff-V2M diffusion transformer with hierarchical cross-attention.

:class:`DiT` maps latents [B, io, L] and the diffusion time t to the v prediction. The latent
tokens follow one global token (timing, class and t); each :class:`Block` runs rotary
self-attention, cross-attention to the colour tokens, the semantic and rhythmic
cross-attentions fused by :class:`Fusion` as a function of t, and a SwiGLU feed-forward.
:class:`Contexts` carries the three cross-attention contexts; classifier-free guidance runs the
conditional and the unconditional half as one batch. With ``official`` the block keeps the
published norm placement, where the LayerNorms around the cross-attentions replace the residual
stream; the default block is pre-norm throughout. The fusion variants and the rest:
docs/diffv2m.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from .config import DiffV2MConfig
from .layers import CrossAttention, FourierTime, Rotary, SelfAttention, SwiGLU, layer_norm, rotary_dim


@dataclass
class Contexts:
    """The three cross-attention contexts (before the shared token MLP), masks True = attend."""

    semantic: torch.Tensor
    semantic_mask: torch.Tensor
    rhythm: torch.Tensor
    rhythm_mask: torch.Tensor
    color: torch.Tensor
    color_mask: torch.Tensor

    def map(self, fn) -> "Contexts":
        return replace(self, semantic=fn(self.semantic), rhythm=fn(self.rhythm), color=fn(self.color))

    def doubled(self) -> "Contexts":
        """Conditional then unconditional (zero contexts, same masks), for batched guidance."""
        two = lambda m: torch.cat([m, m])  # noqa: E731
        return Contexts(torch.cat([self.semantic, torch.zeros_like(self.semantic)]), two(self.semantic_mask),
                        torch.cat([self.rhythm, torch.zeros_like(self.rhythm)]), two(self.rhythm_mask),
                        torch.cat([self.color, torch.zeros_like(self.color)]), two(self.color_mask))


def _mlp(dim_in: int, hidden: int, dim_out: int, sigmoid: bool = False) -> nn.Sequential:
    layers = [nn.Linear(dim_in, hidden), nn.ReLU(), nn.Linear(hidden, dim_out)]
    return nn.Sequential(*layers, nn.Sigmoid()) if sigmoid else nn.Sequential(*layers)


class Fusion(nn.Module):
    """Semantic and rhythmic cross-attention outputs -> one update, as a function of t."""

    def __init__(self, kind: str, dim: int, cond_dim: int, switch_t: float = 0.2):
        super().__init__()
        self.kind, self.switch_t = kind, switch_t
        if kind in ("film_choose", "film_sum"):
            self.time_proj = nn.Linear(1, 64)
            self.gamma_semantic, self.beta_semantic = _mlp(64, 256, dim, sigmoid=True), _mlp(64, 256, dim)
            self.gamma_rhythm, self.beta_rhythm = _mlp(64, 256, dim, sigmoid=True), _mlp(64, 256, dim)
        elif kind == "gate":
            self.gate = nn.Sequential(nn.Linear(1, cond_dim), nn.SiLU(), nn.Linear(cond_dim, 1), nn.Sigmoid())

    def semantic_first(self, t: torch.Tensor) -> torch.Tensor:
        """Per item: whether film_choose uses the semantic branch (t > switch_t, in float32)."""
        return t.float() > self.switch_t

    def forward(self, t: torch.Tensor, semantic, rhythm) -> torch.Tensor:
        """``semantic`` / ``rhythm``: callables giving each branch's attention output, so that
        film_choose computes only the branch it uses when the whole batch is on one side."""
        if self.kind == "average":
            return 0.5 * semantic() + 0.5 * rhythm()
        if self.kind == "gate":
            alpha = self.gate(t[:, None].float())[:, :, None]
            return alpha * semantic() + (1 - alpha) * rhythm()
        te = self.time_proj(t[:, None].to(self.time_proj.weight.dtype))
        film_s = lambda: semantic() * self.gamma_semantic(te)[:, None] + self.beta_semantic(te)[:, None]  # noqa: E731
        film_r = lambda: rhythm() * self.gamma_rhythm(te)[:, None] + self.beta_rhythm(te)[:, None]  # noqa: E731
        if self.kind == "film_sum":
            return film_s() + film_r()
        choose = self.semantic_first(t)
        if bool(choose.all()):
            return film_s()
        if not bool(choose.any()):
            return film_r()
        return torch.where(choose[:, None, None], film_s(), film_r())


class Block(nn.Module):
    """One DiT block on the token stream [B, 1 + L, embed_dim] (the global token first): rotary
    self-attention, cross-attention to the emotional (colour) context, the two fused
    cross-attentions to the semantic and rhythmic contexts, then a SwiGLU feed-forward, each a
    residual branch (pre-norm, or the published norm placement in ``official`` mode)."""

    def __init__(self, config: DiffV2MConfig):
        super().__init__()
        d = config.dit
        E, C, h = d.embed_dim, config.conditioning.cond_dim, d.head_dim
        self.official = config.official
        self.attn_norm, self.attn = layer_norm(E), SelfAttention(E, h)
        self.cross_norm, self.color_attn = layer_norm(E), CrossAttention(E, C, h)
        self.color_norm = layer_norm(E)
        self.semantic_attn, self.rhythm_attn = CrossAttention(E, C, h), CrossAttention(E, C, h)
        self.fusion = Fusion(d.fusion, E, C, d.switch_t)
        self.ff_norm, self.ff = layer_norm(E), SwiGLU(E)

    def forward(self, x: torch.Tensor, t: torch.Tensor, rotary: Rotary, ctx: Contexts) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), rotary)
        if self.official:  # the published block: the norms replace the stream
            x = self.cross_norm(x)
            x = self.color_norm(x + self.color_attn(x, ctx.color, ctx.color_mask))
            h = x
        else:
            x = x + self.color_attn(self.cross_norm(x), ctx.color, ctx.color_mask)
            h = self.color_norm(x)
        x = x + self.fusion(t, lambda: self.semantic_attn(h, ctx.semantic, ctx.semantic_mask),
                            lambda: self.rhythm_attn(h, ctx.rhythm, ctx.rhythm_mask))
        return x + self.ff(self.ff_norm(x))


class DiT(nn.Module):
    """Latents [B, io_channels, L] and a diffusion time -> the v prediction, conditioned on the
    three cross-attention contexts and the global token; ``cfg_scale`` adds
    classifier-free guidance in one doubled batch."""

    def __init__(self, config: DiffV2MConfig):
        super().__init__()
        d, C = config.dit, config.conditioning.cond_dim
        E, io = d.embed_dim, d.io_channels
        self.time_features = FourierTime(128)
        self.time_embed = nn.Sequential(nn.Linear(256, E), nn.SiLU(), nn.Linear(E, E))
        self.cond_embed = nn.Sequential(nn.Linear(C, C, bias=False), nn.SiLU(), nn.Linear(C, C, bias=False))
        self.global_embed = nn.Sequential(nn.Linear(3 * C, E, bias=False), nn.SiLU(), nn.Linear(E, E, bias=False))
        self.pre_conv = nn.Conv1d(io, io, 1, bias=False)
        self.post_conv = nn.Conv1d(io, io, 1, bias=False)
        self.proj_in, self.proj_out = nn.Linear(io, E, bias=False), nn.Linear(E, io, bias=False)
        self.rotary = Rotary(rotary_dim(d.head_dim))
        self.blocks = nn.ModuleList(Block(config) for _ in range(d.depth))

    def forward(self, x: torch.Tensor, t: torch.Tensor, ctx: Contexts, global_cond: torch.Tensor,
                cfg_scale: float = 1.0) -> torch.Tensor:
        """v prediction for latents ``x`` [B, io, L] at times ``t`` [B]; ``cfg_scale`` != 1 adds
        classifier-free guidance (uncond + scale * (cond - uncond))."""
        if cfg_scale == 1.0:
            return self._forward(x, t, ctx, global_cond)
        out = self._forward(torch.cat([x, x]), torch.cat([t, t]), ctx.doubled(), torch.cat([global_cond, global_cond]))
        cond, uncond = out.chunk(2)
        return uncond + (cond - uncond) * cfg_scale

    def _forward(self, x, t, ctx: Contexts, global_cond) -> torch.Tensor:
        dtype = self.proj_in.weight.dtype
        ctx = ctx.map(lambda c: self.cond_embed(c.to(dtype)))
        g = self.global_embed(global_cond.to(dtype)) + self.time_embed(self.time_features(t.to(dtype)))
        x = x.to(dtype)
        x = (self.pre_conv(x) + x).transpose(1, 2)
        x = torch.cat([g[:, None], self.proj_in(x)], 1)
        for block in self.blocks:
            x = block(x, t, self.rotary, ctx)
        x = self.proj_out(x).transpose(1, 2)[:, :, 1:]
        return self.post_conv(x) + x
