"""Training v2m's models with Lightning.

:mod:`.diffv2m`: Diff-V2M on a prepared dataset (``v2m prepare``), with the published recipe
(v-objective, AdamW with the InverseLR schedule, EMA of the DiT, scheduled rhythm
conditioning, condition dropout), resumable checkpoints and an exported pipeline folder.
:mod:`.stad`: ControllableV2M the same way. What both share (the run's settings, the Lightning
run, checkpoints, audio samples): :mod:`.settings` and :mod:`.common`.

    from v2m.train import fit_diffv2m
    result = fit_diffv2m("config.json", "data/diffv2m", "runs/diffv2m", max_epochs=50)
    # runs/diffv2m/final loads with DiffV2MPipeline.load

The names below load their modules on first use, so :mod:`.settings` (which ``v2m train
--help`` reads) comes without torch and Lightning.
"""

from __future__ import annotations

import importlib

_WHERE = {  # name -> (module, attribute)
    "EMA": (".diffv2m", "EMA"),
    "VAL_TIMES": (".diffv2m", "VAL_TIMES"),
    "DiffV2MModule": (".diffv2m", "DiffV2MModule"),
    "FitResult": (".common", "FitResult"),
    "PUBLISHED": (".settings", "PUBLISHED"),
    "TrainSettings": (".settings", "TrainSettings"),
    "ema_decay": (".diffv2m", "ema_decay"),
    "export_checkpoint": (".diffv2m", "export_checkpoint"),
    "fit": (".diffv2m", "fit"),
    "fit_diffv2m": (".diffv2m", "fit"),
    "inverse_lr_factor": (".diffv2m", "inverse_lr_factor"),
    "validation_loss": (".diffv2m", "validation_loss"),
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _WHERE[name]
    return getattr(importlib.import_module(module, __name__), attribute)
