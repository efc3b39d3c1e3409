"""How a training run goes, for either model: one settings object and each model's published values.

:class:`TrainSettings` holds what both ``fit`` functions take besides the model (schedule, data
loading, hardware, monitoring); :data:`PUBLISHED` is each model's as published (Diff-V2M: 50
epochs of batch 32; ControllableV2M: 100 epochs of batch 6). The optimiser's settings (learning
rate, weight decay, ...) belong to each model's config, which its checkpoints carry. This module
imports nothing heavy, so ``v2m train --help`` shows these defaults without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

STRATEGIES = {"auto": "auto", "ddp": "ddp_find_unused_parameters_true", "fsdp": "fsdp", "deepspeed": "deepspeed"}


@dataclass(frozen=True)
class TrainSettings:
    """One training run's settings (Lightning's names where it has them)."""

    max_epochs: int
    batch_size: int  # clips per device
    checkpoint_every: int = 150  # optimiser steps between writes of last.ckpt (the official run's)
    max_steps: int = -1  # stop after this many optimiser steps (-1: when the epochs are done)
    num_workers: int = 4  # data loader workers per device
    accumulate: int = 1  # batches per optimiser step (the official Diff-V2M run: 4, on 2 GPUs)
    precision: str | None = None  # Lightning's; None: bf16-mixed on a GPU that has it, else 32-true
    accelerator: str = "auto"
    devices: int | str | Sequence[int] = "auto"  # per node
    num_nodes: int = 1
    strategy: str = "auto"  # a key of STRATEGIES or any Lightning strategy name
    val_every: int | None = None  # optimiser steps between validations (None: after each epoch)
    sample_every: int = 0  # optimiser steps between audio samples (0: never)
    log_every: int = 50  # optimiser steps between logged scalars
    crop_seconds: int | None = None  # train on random crops this long (None: whole clips)
    seed: int = 42
    resume: bool = True  # continue from out/checkpoints/last.ckpt when it is there
    progress: bool = True  # Lightning's progress bar and model summary


PUBLISHED = {"diffv2m": TrainSettings(max_epochs=50, batch_size=32),
             "stad": TrainSettings(max_epochs=100, batch_size=6, checkpoint_every=500)}


def published(field: str) -> str:
    """Each model's published value of the settings' ``field``, for help texts: "diffv2m 50, stad 100"."""
    return ", ".join(f"{model} {getattr(settings, field)}" for model, settings in PUBLISHED.items())
