"""Building blocks of Diff-V2M's transformers (the rhythm predictor and the DiT).

Each computes what the official stable-audio-tools fork computes (see docs/diffv2m.md):
pre-norm LayerNorms without bias, rotary position embedding on the first ``max(head/2, 32)``
channels of each head (half-split rotation, base 10000), attention whose cross-attention keys
and values have ``context_dim / head_dim`` heads shared by groups of query heads, a SwiGLU
feed-forward (4x), random Fourier features of the diffusion time and learned Fourier
embeddings of numbers (seconds).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def layer_norm(dim: int) -> nn.LayerNorm:
    """LayerNorm with a learned gain and no bias (eps 1e-5)."""
    return nn.LayerNorm(dim, eps=1e-5, bias=False)


class Rotary(nn.Module):
    """Rotary position embedding over the first ``dim`` channels of each head."""

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        self.dim, self.base = dim, base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [B, heads, n, d] rotated by position 0..n-1 (computed in float32)."""
        n, r = x.shape[-2], self.dim
        inv_freq = 1.0 / self.base ** (torch.arange(0, r, 2, device=x.device).float() / r)
        freqs = torch.outer(torch.arange(n, device=x.device, dtype=torch.float32), inv_freq)
        freqs = torch.cat([freqs, freqs], -1)
        rot, rest = x[..., :r].float(), x[..., r:]
        half = torch.cat([-rot[..., r // 2 :], rot[..., : r // 2]], -1)
        rot = rot * freqs.cos() + half * freqs.sin()
        return torch.cat([rot.to(x.dtype), rest], -1)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scaled dot-product attention; q [B, h, n, d], k/v [B, hk, m, d] with hk dividing h (each
    key/value head serves h/hk consecutive query heads); ``mask`` [B, m] True = attend. A row with
    nothing to attend to attends to everything, as the official masked softmax does."""
    if k.shape[1] != q.shape[1]:
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
        v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
    if mask is not None:
        mask = mask | ~mask.any(-1, keepdim=True)
        mask = mask[:, None, None, :]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, head_dim: int):
        super().__init__()
        self.heads, self.head_dim = dim // head_dim, head_dim
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, rotary: Rotary, mask: torch.Tensor | None = None) -> torch.Tensor:
        B, n, _ = x.shape
        q, k, v = (t.view(B, n, self.heads, self.head_dim).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        y = attend(rotary(q), rotary(k), v, mask)
        return self.out(y.transpose(1, 2).reshape(B, n, -1))


class CrossAttention(nn.Module):
    """Queries from the sequence (width ``dim``), keys and values from a context of width
    ``context_dim`` with ``context_dim // head_dim`` heads."""

    def __init__(self, dim: int, context_dim: int, head_dim: int):
        super().__init__()
        self.heads, self.head_dim = dim // head_dim, head_dim
        self.kv_heads = context_dim // head_dim
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(context_dim, 2 * context_dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        B, n, _ = x.shape
        q = self.q(x).view(B, n, self.heads, self.head_dim).transpose(1, 2)
        k, v = (t.view(B, -1, self.kv_heads, self.head_dim).transpose(1, 2) for t in self.kv(context).chunk(2, -1))
        return self.out(attend(q, k, v, mask).transpose(1, 2).reshape(B, n, -1))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * mult * dim)
        self.out = nn.Linear(mult * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = self.proj(x).chunk(2, -1)
        return self.out(a * F.silu(gate))


class SelfBlock(nn.Module):
    """Pre-norm self-attention and feed-forward: the rhythm predictor's block."""

    def __init__(self, dim: int, head_dim: int):
        super().__init__()
        self.attn_norm, self.attn = layer_norm(dim), SelfAttention(dim, head_dim)
        self.ff_norm, self.ff = layer_norm(dim), SwiGLU(dim)

    def forward(self, x: torch.Tensor, rotary: Rotary, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), rotary, mask)
        return x + self.ff(self.ff_norm(x))


def rotary_dim(head_dim: int) -> int:
    return max(head_dim // 2, 32)


class FourierTime(nn.Module):
    """Random Fourier features of the diffusion time: [cos, sin] of 2 pi t w, ``2 * n`` wide."""

    def __init__(self, n: int = 128):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n, 1))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        f = (2 * math.pi * t[:, None].to(self.weight.dtype)) @ self.weight.T
        return torch.cat([f.cos(), f.sin()], -1)


class NumberEmbedder(nn.Module):
    """A number in [low, high] -> one token: [x, sin, cos] of 2 pi x w (x normalised to [0, 1],
    ``n`` learned frequencies) through a Linear."""

    def __init__(self, out_dim: int, low: float, high: float, n: int = 128):
        super().__init__()
        self.low, self.high = float(low), float(high)
        self.freqs = nn.Parameter(torch.randn(n))
        self.proj = nn.Linear(2 * n + 1, out_dim)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        x = (values.float().clamp(self.low, self.high) - self.low) / (self.high - self.low)
        x = x[:, None]
        f = x * self.freqs[None] * 2 * math.pi
        return self.proj(torch.cat([x, f.sin(), f.cos()], -1).to(self.proj.weight.dtype))[:, None, :]
