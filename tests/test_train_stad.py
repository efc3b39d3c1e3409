"""ControllableV2M training with Lightning: a few steps, a checkpoint that resumes."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from test_stad import tiny_config, training_batch
from v2m.train.stad import StadModule


def _loader():
    batch = training_batch(B=2, T=4, real=4)
    items = [{k: v[i] for k, v in batch.items()} for i in range(2)]
    return DataLoader(items, batch_size=2)


def _trainer(tmp_path, steps):
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=str(tmp_path), save_last=True, every_n_train_steps=1, save_top_k=0)
    return pl.Trainer(max_steps=steps, logger=False, callbacks=[ckpt], enable_progress_bar=False,
                      enable_model_summary=False, accelerator="cpu", gradient_clip_val=1.0, num_sanity_val_steps=0)


def test_stad_trains_and_resumes(tmp_path):
    from dataclasses import replace

    torch.manual_seed(0)
    config = tiny_config(max_seconds=4)
    config = replace(config, lr=3e-3)
    module = StadModule(config.to_dict())
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    _trainer(tmp_path, 3).fit(module, _loader(), _loader())
    after = module.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    ckpt = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 3 and ckpt["optimizer_states"]
    # schedule-free: the evaluation weights differ from the training sequence
    assert any(not torch.equal(ckpt["eval_weights"][k], ckpt["state_dict"][f"model.{k}"]) for k in ckpt["eval_weights"])
    resumed = StadModule(ckpt["hyper_parameters"]["config"])
    _trainer(tmp_path, 5).fit(resumed, _loader(), _loader(), ckpt_path=str(tmp_path / "last.ckpt"))
    assert torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=True)["global_step"] == 5
