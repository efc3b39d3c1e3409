"""Samplers for the v-objective: the official DDIM-style sampler and DPM-Solver++.

The model predicts v at time t in [0, 1], with x_t = cos(pi t / 2) x0 + sin(pi t / 2) noise.

:func:`v_ddim` is the official sampler (250 steps in the paper). Time runs from 1 (noise) to 0 on t = linspace(1, 0, steps + 1)[:-1] with alpha = cos(pi t / 2),
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


def dpm_solver(model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor, steps: int = 50,
               sigma_min: float = 0.005, sigma_max: float = 100.0, callback=None) -> torch.Tensor:
    """DPM-Solver++ (2M, deterministic) from diffusers on the same ODE: our time t is the
    scheduler's noise level sigma = tan(pi t / 2) (sigma_data 1), so ``model`` is called at
    t = atan(sigma) 2 / pi on x_t = x_sigma / sqrt(sigma^2 + 1). ``sigma_max`` 100 starts at
    t = 0.994, ``sigma_min`` 0.005 ends at t = 0.003 (as the 250-step DDIM's last step), so the
    rhythmic branch of film_choose (t <= 0.2) gets its share of the steps."""
    from diffusers import EDMDPMSolverMultistepScheduler

    scheduler = EDMDPMSolverMultistepScheduler(sigma_min=sigma_min, sigma_max=sigma_max, sigma_data=1.0,
                                               sigma_schedule="exponential", prediction_type="v_prediction",
                                               algorithm_type="dpmsolver++", solver_order=2)
    scheduler.set_timesteps(steps, device=noise.device)
    x = noise * scheduler.init_noise_sigma
    ones = noise.new_ones(noise.shape[0])
    for i, timestep in enumerate(scheduler.timesteps):
        sigma = scheduler.sigmas[i].to(noise.device)
        t = torch.atan(sigma) * 2 / math.pi
        v = model(scheduler.scale_model_input(x, timestep), ones * t)
        x = scheduler.step(v, timestep, x).prev_sample
        if callback is not None:
            callback(i, float(t), None, x)
    return x


SAMPLERS = {"ddim": v_ddim, "dpm": dpm_solver}
DEFAULT_STEPS = {"ddim": 250, "dpm": 50}
