"""Training v2m's models with Lightning.

:mod:`.diffv2m`: Diff-V2M on a prepared dataset (``v2m prepare``), with the published recipe
(v-objective, AdamW with the InverseLR schedule, EMA of the DiT, scheduled rhythm
conditioning, condition dropout), resumable checkpoints and an exported pipeline folder.

    from v2m.train import fit_diffv2m
    result = fit_diffv2m("config.json", "data/diffv2m", "runs/diffv2m", max_epochs=50)
    # runs/diffv2m/final loads with DiffV2MPipeline.load
"""

from .diffv2m import (
    EMA,
    VAL_TIMES,
    DiffV2MModule,
    FitResult,
    ema_decay,
    export_checkpoint,
    fit,
    inverse_lr_factor,
    validation_loss,
)

fit_diffv2m = fit

__all__ = ["EMA", "VAL_TIMES", "DiffV2MModule", "FitResult", "ema_decay", "export_checkpoint", "fit",
           "fit_diffv2m", "inverse_lr_factor", "validation_loss"]
