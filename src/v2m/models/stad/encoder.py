"""ControllableV2M's video encoder: the objects of each shot -> one token per second.

:class:`VideoEncoder` makes each object's token from its CLIP embedding, shot index, area, start
position and colour histogram (:func:`shot_encoding`, :func:`position_encoding`, and
:func:`color_encoding` of :func:`normalise_hist`'s proportions), rotates every token by the
object's movement and sums the objects per second (:func:`rotate_and_sum`), then runs a
transformer over time with the padded seconds masked. In training it drops tokens of each
stream (:meth:`VideoEncoder.drop`, feature-free guidance); :func:`apply_video_controls` scales
streams before encoding. Every stream is shot-major, as
:func:`v2m.analysis.shot_objects.clip_tensors` lays them out. What each step computes and how it
differs from the official code: docs/stad.md.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import VideoConfig

TOKEN_DIM = 3 * 256  # width of an object token: that of the colour encoding


def _sinusoid(index: torch.Tensor, dim: int) -> torch.Tensor:
    """[..., dim] sin/cos (interleaved) encoding of ``index`` [...]."""
    div = torch.exp(torch.arange(0, dim, 2, device=index.device).float() * -(math.log(10000.0) / dim))
    angle = index.float()[..., None] * div
    return torch.stack([angle.sin(), angle.cos()], -1).flatten(-2)


def shot_encoding(S: int, O: int, dim: int, device=None) -> torch.Tensor:
    """[S, O, dim]: the encoding of each object's shot index."""
    return _sinusoid(torch.arange(S, device=device), dim)[:, None, :].expand(S, O, dim)


def position_encoding(start: torch.Tensor, dim: int) -> torch.Tensor:
    """[..., dim] from start positions [..., 2] (x, y): sin and cos of x on the first half of the
    channels and of y on the second, scaled by k / half as the official encoding."""
    half = dim // 2
    scale = torch.arange(0, half, 2, device=start.device).float() / half
    parts = []
    for c in (0, 1):
        v = start[..., c : c + 1].float()
        parts.append(torch.stack([v.sin() * scale, v.cos() * scale], -1).flatten(-2))
    return torch.cat(parts, -1)


def normalise_hist(hist: torch.Tensor) -> torch.Tensor:
    """Raw BGR histogram counts [..., 3, 256] -> proportions per channel (zeros stay zeros)."""
    return hist.float() / hist.float().sum(-1, keepdim=True).clamp(min=1e-8)


def color_encoding(p: torch.Tensor) -> torch.Tensor:
    """[..., 3 * 256] from histogram proportions [..., 3, 256]: sin(bin * p * w_bin)."""
    bins = p.shape[-1]
    position = torch.arange(bins, device=p.device).float()
    div = torch.exp(torch.arange(bins, device=p.device).float() * -(math.log(10000.0) / bins))
    return torch.sin(position * p.float() * div).flatten(-2)


def rotate_and_sum(tokens: torch.Tensor, move: torch.Tensor) -> torch.Tensor:
    """Per second, each object's token rotated by its movement and summed over objects.

    ``tokens`` [B, N, D] (N objects), ``move`` [B, T, N, 2] -> [B, T, D]. Channel pairs
    (2i, 2i+1) of the first half rotate by angle x, of the second half by angle y."""
    B, N, D = tokens.shape
    half = D // 2
    out = []
    for c, part in enumerate((tokens[..., :half], tokens[..., half:])):
        pairs = part.reshape(B, N, half // 2, 2)
        a, b = pairs[..., 0], pairs[..., 1]  # [B, N, P]
        angle = move[..., c].float()  # [B, T, N]
        cos, sin = angle.cos(), angle.sin()
        # [[cos, sin], [-sin, cos]] @ (a, b), summed over objects
        ra = torch.einsum("btn,bnp->btp", cos, a) + torch.einsum("btn,bnp->btp", sin, b)
        rb = torch.einsum("btn,bnp->btp", -sin, a) + torch.einsum("btn,bnp->btp", cos, b)
        out.append(torch.stack([ra, rb], -1).flatten(-2))
    return torch.cat(out, -1)


def random_drop(x: torch.Tensor, units: int, rate: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero ``rate`` of the non-empty units of ``x`` [B, U, ...] (the first ``units`` axes after
    the batch form one unit index: e.g. [B, S] whole shots or [B, S * O] single objects)."""
    B = x.shape[0]
    flat = x.reshape(B, units, -1)
    present = flat.abs().sum(-1) > 0  # [B, units]
    n = int(math.ceil(float(present.sum()) * rate))
    if n == 0:
        return x
    candidates = present.flatten().nonzero().squeeze(1)
    chosen = candidates[torch.randperm(len(candidates), generator=generator)[:n].to(candidates.device)]
    keep = torch.ones(B * units, device=x.device, dtype=x.dtype)
    keep[chosen] = 0
    return (flat * keep.view(B, units, 1)).reshape(x.shape)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), QuickGELU(), nn.Linear(4 * width, width))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.dropout(self.attn(h, h, h, key_padding_mask=pad, need_weights=False)[0])
        return x + self.dropout(self.mlp(self.ln_2(x)))


class VideoEncoder(nn.Module):
    def __init__(self, config: VideoConfig):
        super().__init__()
        self.config = config
        # object tokens are as wide as the colour encoding (3 x 256 = 768, CLIP ViT-L/14-336's size);
        # embeddings of another CLIP are mapped to that width first
        self.semantic_in = nn.Identity() if config.semantic_dim == TOKEN_DIM else nn.Linear(config.semantic_dim, TOKEN_DIM)
        self.proj = nn.Linear(TOKEN_DIM, config.width)
        self.blocks = nn.ModuleList(Block(config.width, config.heads, config.dropout) for _ in range(config.layers))
        self.dropout = nn.Dropout(config.dropout)

    def tokens(self, semantic, hist, area, start, move) -> torch.Tensor:
        """Per-second tokens [B, T, 768] before the transformer (docs/stad.md, "video encoder")."""
        semantic = self.semantic_in(semantic.float())
        B, S, O, D = semantic.shape
        sem = (semantic + shot_encoding(S, O, D, semantic.device)) * area.float()
        tok = sem + position_encoding(start, D) + color_encoding(hist)
        return rotate_and_sum(tok.reshape(B, S * O, D), move.reshape(B, move.shape[1], S * O, 2))

    def drop(self, semantic, hist, area, start, move, generator=None):
        """Feature-free guidance: the official random drops of each stream."""
        B, S, O = semantic.shape[:3]
        r = self.config.drop_rate
        return (random_drop(semantic, S, r, generator), random_drop(hist, S * O, r, generator),
                random_drop(area, S * O, r, generator), random_drop(start, S * O, r, generator),
                random_drop(move, move.shape[1], r, generator))

    def forward(self, semantic, hist, area, start, move, time_mask=None, generator=None) -> torch.Tensor:
        """[B, T, width] video features; random drops when training."""
        if self.training and self.config.drop_rate > 0:
            semantic, hist, area, start, move = self.drop(semantic, hist, area, start, move, generator)
        x = self.proj(self.tokens(semantic, hist, area, start, move))
        pad = None if time_mask is None else ~time_mask.bool()
        if pad is not None:
            pad = pad & pad.any(-1, keepdim=True) & ~pad.all(-1, keepdim=True)  # a clip with no seconds attends to all
        for block in self.blocks:
            x = block(x, pad)
        return self.dropout(x)


def apply_video_controls(features: dict, controls) -> dict:
    """Scale streams of shots/objects before encoding (``controls``: VideoControl items with
    shot, obj (-1 = all), feature (semantic | color | move | area | position | all), weight).
    ``features``: semantic, hist, area, start, move as above (batched); returns a scaled copy."""
    out = {k: v.clone() for k, v in features.items()}
    names = {"semantic": ("semantic",), "color": ("hist",), "move": ("move",), "area": ("area",),
             "position": ("start",)}
    for c in controls:
        s = slice(None) if c.shot < 0 else slice(c.shot, c.shot + 1)
        o = slice(None) if c.obj < 0 else slice(c.obj, c.obj + 1)
        keys = [k for f, ks in names.items() if c.feature in ("all", f) for k in ks]
        for k in keys:
            if k == "move":
                out[k][:, :, s, o] = out[k][:, :, s, o] * c.weight
            else:
                out[k][:, s, o] = out[k][:, s, o] * c.weight
    return out
