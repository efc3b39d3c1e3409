"""Samplers for the v-objective: the official DDIM-style sampler.

Time runs from 1 (noise) to 0 on t = linspace(1, 0, steps + 1)[:-1] with alpha = cos(pi t / 2),
sigma = sin(pi t / 2). At each step the model's v gives the clean estimate
``x0 = alpha x - sigma v`` and the noise ``eps = sigma x + alpha v``; the next state is
``alpha' x0 + sigma' eps`` (eta = 0; eta > 0 adds DDIM noise). The result is the last clean
estimate (t = 1 / steps).
"""

from __future__ import annotations

import math
from typing import Callable

import torch


def v_ddim(model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor, steps: int,
           eta: float = 0.0, generator: torch.Generator | None = None, callback=None) -> torch.Tensor:
    """Sample from ``noise`` [B, C, L] with ``model(x, t) -> v``; ``callback(i, t, x0, x_next)``."""
    x = noise
    ts = torch.linspace(1, 0, steps + 1)[:-1]
    alphas, sigmas = torch.cos(ts * math.pi / 2), torch.sin(ts * math.pi / 2)
    ones = x.new_ones(x.shape[0])
    x0 = x
    for i in range(steps):
        v = model(x, ones * ts[i].to(x.device))
        a, s = alphas[i].to(x.device), sigmas[i].to(x.device)
        x0, eps = x * a - v * s, x * s + v * a
        if i < steps - 1:
            a2, s2 = alphas[i + 1].to(x.device), sigmas[i + 1].to(x.device)
            ddim_sigma = eta * (s2**2 / s**2).sqrt() * (1 - a**2 / a2**2).sqrt()
            x = x0 * a2 + eps * (s2**2 - ddim_sigma**2).sqrt()
            if eta:
                x = x + torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) * ddim_sigma
        if callback is not None:
            callback(i, float(ts[i]), x0, x)
    return x0
