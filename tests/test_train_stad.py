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


def test_v2m_train_stad_command(tmp_path, tiny_encodec, tiny_sam, tiny_clip, capsys):
    """prepare (tokens + objects) -> `v2m train stad` -> resume -> samples -> the exported folder generates."""
    import json

    import numpy as np

    from v2m.cli import main
    from v2m.models.stad.pipeline import StadPipeline
    from synthetic import write_video

    src = tmp_path / "src"
    src.mkdir()
    write_video(src / "a.mp4", duration=6.0, fps=5, size=(64, 48), cut_times=[3.0], audio=True)
    write_video(src / "b.mp4", duration=5.0, fps=5, size=(64, 48), cut_times=[2.0], audio=True)
    data = tmp_path / "data"
    assert main(["prepare", str(src), "-o", str(data), "--model", "stad", "--clip-seconds", "4", "--min-seconds", "2",
                 "--clip", str(tiny_clip), "--sam", str(tiny_sam), "--codec", str(tiny_encodec), "--splits",
                 "100/0/0", "--device", "cpu", "-q"]) == 0, capsys.readouterr().err
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_config(semantic_dim=24).to_dict()))
    out = tmp_path / "run"
    args = ["train", "stad", "--config", str(config), "--data", str(data), "-o", str(out), "--batch-size", "2",
            "--workers", "0", "--precision", "32-true", "--devices", "1", "--sample-every", "2", "-q"]
    assert main([*args, "--max-steps", "2"]) == 0, capsys.readouterr().err
    assert len(list(out.glob("logs/*/samples/step00000002_*.wav"))) == 2  # audio samples of two clips
    assert list(out.glob("logs/*/events.out.tfevents.*")) and list(out.glob("metrics/*/hparams.yaml"))
    assert main([*args, "--max-steps", "3"]) == 0  # resumes from last.ckpt
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 3
    pipeline = StadPipeline.load(str(out / "final"), device="cpu")
    exported = pipeline.model.state_dict()
    assert all(torch.equal(exported[k], v) for k, v in ckpt["eval_weights"].items())  # the evaluation weights
    video = src / "a.mp4"
    assert main(["generate", str(video), "--model", "stad", "--checkpoint", str(out / "final"), "--sam", str(tiny_sam),
                 "--clip", str(tiny_clip), "--device", "cpu", "--no-midi", "-o", str(tmp_path / "scored.mp4"),
                 "-q"]) == 0, capsys.readouterr().err
    from v2m.media import read_audio

    assert np.abs(read_audio(tmp_path / "scored.wav", 32000, channels=1)).max() > 0.01
