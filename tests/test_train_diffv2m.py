"""Diff-V2M training (v2m.train.diffv2m): a few steps on a tiny prepared dataset with VAE latents,
the exported pipeline, resuming (step, schedule and EMA), the InverseLR schedule, the EMA warm-up,
deterministic validation, audio samples, and the errors a user can act on."""

from __future__ import annotations

import csv
import json
import math
import shutil
from dataclasses import replace

import lightning.pytorch as pl
import pytest
import torch

from test_diffv2m import tiny_batch, tiny_config
from v2m.cli import main
from v2m.errors import V2MError
from v2m.models.diffv2m import DiffV2M
from v2m.models.diffv2m.pipeline import DiffV2MPipeline
from v2m.models.diffv2m.vae import OfficialVAE, oobleck_kwargs
from synthetic import write_video
from v2m.train.diffv2m import EMA, VAL_TIMES, DiffV2MModule, ema_decay, fit, inverse_lr_factor, validation_loss

# the tiny VAE of conftest's tiny_oobleck_repo, as an official pretransform config
TINY_VAE = {
    "encoder": {"type": "oobleck", "config": {"in_channels": 2, "channels": 16, "c_mults": [1, 1, 1, 1, 1],
                                              "strides": [2, 4, 4, 8, 8], "latent_dim": 16, "use_snake": True}},
    "decoder": {"type": "oobleck", "config": {"out_channels": 2, "channels": 4, "c_mults": [1, 1, 1, 1, 1],
                                              "strides": [2, 4, 4, 8, 8], "latent_dim": 8, "use_snake": True,
                                              "final_tanh": False}},
    "bottleneck": {"type": "vae"}, "latent_dim": 8, "downsampling_ratio": 2048, "io_channels": 2,
}
FAST = dict(batch_size=2, num_workers=0, precision="32-true", crop_seconds=2, log_every=1, progress=False, seed=0)


@pytest.fixture(scope="module")
def config():
    """The tiny model of test_diffv2m with the prepared dataset's sizes (zero CLIP rows of 512 when
    prepared without CLIP, 3072-bin colour histograms) and the tiny VAE's 8 latent channels."""
    c = tiny_config()
    return replace(c, dit=replace(c.dit, io_channels=8), vae=TINY_VAE, sample_size=2 * 44100,
                   conditioning=replace(c.conditioning, semantic_dim=512, color_dim=3072))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_oobleck_repo):
    """An 8 s music video prepared with the tiny VAE: two 4 s training clips with latents, and a
    copy of the first clip in the val split."""
    src = tmp_path_factory.mktemp("train-src")
    write_video(src / "a.mp4", duration=8.0, fps=10, size=(64, 48), cut_times=[3.0], audio=True)
    out = tmp_path_factory.mktemp("train-ds") / "ds"
    assert main(["prepare", str(src), "-o", str(out), "--clip-seconds", "4", "--min-seconds", "4", "--no-clip",
                 "--codec", str(tiny_oobleck_repo), "--splits", "100/0/0", "-q"]) == 0
    manifest = out / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows.append({**rows[0], "id": rows[0]["id"] + "-val", "split": "val"})
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def _metrics(out) -> list[dict]:
    rows = []
    for path in sorted((out / "metrics").glob("version_*/metrics.csv")):
        rows += list(csv.DictReader(path.open()))
    return rows


def _lr(step: int) -> float:
    return 1e-4 * (1 - 0.99 ** (step + 1)) * (1 + step / 1e6) ** -0.5


class Snapshot(pl.Callback):
    """What the module holds when training starts (after any checkpoint was restored), and the
    learning rate each optimiser step uses."""

    def __init__(self):
        self.lrs: dict[int, float] = {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.lrs[trainer.global_step] = trainer.optimizers[0].param_groups[0]["lr"]

    def on_train_start(self, trainer, module):
        self.step, self.ema_updates = trainer.global_step, module.ema.updates
        self.ema = {k: v.clone() for k, v in module.ema.weights.items()}
        self.weights = {k: v.clone() for k, v in module.model.state_dict().items()}


def test_config_fits_the_tiny_vae(config, tiny_oobleck_repo):
    vae = OfficialVAE.from_pretrained(str(tiny_oobleck_repo / "vae"))
    kwargs = oobleck_kwargs(config.vae)
    assert {k: kwargs[k] for k in ("encoder_hidden_size", "downsampling_ratios", "decoder_input_channels")} == \
        {"encoder_hidden_size": 16, "downsampling_ratios": [2, 4, 4, 8, 8], "decoder_input_channels": 8}
    assert (vae.latent_dim, vae.hop_length) == (config.dit.io_channels, config.downsampling)


def test_fit_writes_the_checkpoint_logs_samples_and_a_loadable_pipeline(config, dataset, tmp_path):
    out, snap = tmp_path / "run", Snapshot()
    result = fit(config, dataset, out, max_steps=3, val_every=2, sample_every=2, sample_steps=2,
                 callbacks=[snap], **FAST)
    assert result.trainer.global_step == 3 and result.module.ema.updates == 3
    assert result.checkpoint == out / "checkpoints" / "last.ckpt" and result.final == out / "final"

    # the checkpoint loads without unpickling objects, holds the EMA, and not the frozen VAE
    ckpt = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 3 and ckpt["ema"]["updates"] == 3
    assert ckpt["state_dict"] and all(k.startswith("model.") for k in ckpt["state_dict"])
    assert ckpt["hyper_parameters"]["config"] == json.loads(json.dumps(config.to_dict()))

    # the exported pipeline: the trained online weights, the EMA copy by default, the config
    trained = result.module.model.state_dict()
    assert any(not torch.equal(trained[k], snap.weights[k]) for k in trained)  # training changed them
    online = DiffV2MPipeline.load(str(out / "final"), device="cpu", weights="online")
    assert online.config == config
    assert online.model.state_dict().keys() == trained.keys()
    assert all(torch.equal(online.model.state_dict()[k], trained[k]) for k in trained)
    averaged = DiffV2MPipeline.load(str(out / "final"), device="cpu").model.state_dict()
    ema = result.module.ema.weights
    assert ema.keys() == {k for k in trained if k.startswith("dit.")}
    assert all(torch.equal(averaged[k], ema[k]) for k in ema)
    assert any(not torch.equal(ema[k], trained[k]) for k in ema)  # the third update averaged (decay 0.405)
    assert all(torch.equal(averaged[k], trained[k]) for k in trained if not k.startswith("dit."))

    # the learning rate of every step follows InverseLR; the logs have it, and the losses
    assert sorted(snap.lrs) == [0, 1, 2] and all(math.isclose(lr, _lr(k)) for k, lr in snap.lrs.items())
    metrics = _metrics(out)
    logged = sorted(float(r["lr"]) for r in metrics if r.get("lr"))
    assert len(logged) == 3 and all(math.isclose(a, _lr(k), rel_tol=1e-6) for k, a in enumerate(logged))
    losses = [float(r["train/loss"]) for r in metrics if r.get("train/loss")]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    val = [r for r in metrics if r.get("val/loss")]  # val_every=2: once, after step 2
    assert len(val) == 1 and all(val[0].get(f"val/diffusion_t{t:g}") for t in VAL_TIMES)

    # the sample of step 2: the val clip's 2 s crop, as many whole latent frames as fit (43 x 2048
    # samples, as the official 30 s are 645 frames), peak-normalised
    from v2m.media import read_audio

    samples = sorted(out.glob("logs/version_*/samples/*.wav"))
    assert [p.name for p in samples] == ["step00000002_0.wav"]  # one val clip; step 3 is no multiple of 2
    audio = read_audio(samples[0], 44100)
    assert audio.shape == (2, 43 * 2048) and 0.9 < abs(audio).max() <= 1.0

    # validation gives the same value every time
    first = result.trainer.validate(result.module, datamodule=result.trainer.datamodule, verbose=False)
    again = result.trainer.validate(result.module, datamodule=result.trainer.datamodule, verbose=False)
    assert first == again and first[0]["val/loss"] > 0

    # fine-tuning from the exported pipeline: its config and online weights, a new EMA, the
    # training section of the config given, the pipeline's VAE
    tuned_config = replace(config, training=replace(config.training, lr=5e-4))
    tune = Snapshot()
    tuned = fit(tuned_config, dataset, tmp_path / "tuned", init=str(out / "final"), max_steps=1, callbacks=[tune],
                **FAST)
    assert all(torch.equal(tune.weights[k], trained[k]) for k in trained) and tune.ema_updates == 0
    assert math.isclose(tune.lrs[0], 5e-4 * (1 - 0.99)) and tuned.module.config == tuned_config
    assert DiffV2MPipeline.load(str(tmp_path / "tuned" / "final"), device="cpu").config == tuned_config


def test_resume_continues_steps_schedule_and_ema(config, dataset, tmp_path):
    out = tmp_path / "run"
    fit(config, dataset, out, max_steps=2, **FAST)
    saved = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] == 2 and saved["ema"]["updates"] == 2

    snap = Snapshot()
    result = fit(config, dataset, out, max_steps=4, callbacks=[snap], **FAST)
    assert (snap.step, snap.ema_updates) == (2, 2)  # restored, not started again
    assert snap.ema.keys() == saved["ema"]["weights"].keys()
    assert all(torch.equal(snap.ema[k], saved["ema"]["weights"][k]) for k in snap.ema)
    assert all(torch.equal(snap.weights[k], saved["state_dict"]["model." + k]) for k in snap.weights)
    assert result.trainer.global_step == 4 and result.module.ema.updates == 4
    # a restarted EMA would be a copy of the online weights after two updates; the continued one is not
    online = result.module.dit_weights()
    assert any(not torch.equal(result.module.ema.weights[k], online[k]) for k in online)
    # the schedule went on from step 2
    assert sorted(snap.lrs) == [2, 3] and all(math.isclose(lr, _lr(k)) for k, lr in snap.lrs.items())
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
    # Lightning's own loading gives the same module back, EMA included
    loaded = DiffV2MModule.load_from_checkpoint(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert loaded.config == config and loaded.ema.updates == 4 and loaded.vae is None
    assert all(torch.equal(loaded.ema.weights[k], result.module.ema.weights[k]) for k in online)
    assert all(torch.equal(v, result.module.model.state_dict()[k]) for k, v in loaded.model.state_dict().items())


def test_inverse_lr_schedule_steps_per_optimiser_step(config, tiny_oobleck_repo):
    vae = OfficialVAE.from_pretrained(str(tiny_oobleck_repo / "vae"))
    module = DiffV2MModule(config, vae)
    conf = module.configure_optimizers()
    optimizer, scheduler = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert conf["lr_scheduler"]["interval"] == "step"
    group = optimizer.param_groups[0]
    assert (group["betas"], group["weight_decay"]) == ((0.9, 0.999), 1e-3)
    trained = {id(p) for p in group["params"]}
    assert trained == {id(p) for p in module.model.parameters()}
    assert not trained & {id(p) for p in vae.parameters()}  # the VAE is frozen and not optimised
    assert math.isclose(group["lr"], 1e-6, rel_tol=1e-9)  # (1 - 0.99) * 1e-4
    for k in range(6):
        assert math.isclose(group["lr"], _lr(k), rel_tol=1e-9), k
        optimizer.step()
        scheduler.step()
    assert math.isclose(inverse_lr_factor(10**6), (1 - 0.99 ** (10**6 + 1)) / math.sqrt(2), rel_tol=1e-12)


def test_ema_warm_up_and_update():
    assert ema_decay(0) == ema_decay(1) == 0.0  # the first two updates copy the online weights
    assert math.isclose(ema_decay(2), 1 - 2**-0.75) and math.isclose(ema_decay(3), 1 - 3**-0.75)
    assert math.isclose(ema_decay(100), 1 - 100**-0.75)
    assert ema_decay(10**9) == 0.9999 and ema_decay(10**9, beta=0.5) == 0.5
    ema = EMA(0.9999)
    a, b, c = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -1.0]), torch.tensor([0.0, 5.0])
    assert ema.update({"w": a}) == 0.0 and torch.equal(ema.weights["w"], a)
    ema.update({"w": b})
    assert torch.equal(ema.weights["w"], b)
    d = ema.update({"w": c})
    assert math.isclose(d, 1 - 2**-0.75)
    torch.testing.assert_close(ema.weights["w"], d * b + (1 - d) * c)
    copy = EMA()
    copy.load_state_dict(ema.state_dict())
    assert copy.updates == 3 and torch.equal(copy.weights["w"], ema.weights["w"])


def test_validation_loss_is_deterministic():
    model = DiffV2M(tiny_config()).eval()
    batch = tiny_batch()
    latents = torch.randn(2, 4, 20, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    a = validation_loss(model, batch, latents)
    torch.manual_seed(2)  # the global random state does not matter
    b = validation_loss(model, batch, latents)
    assert a.keys() == b.keys() == {*(f"diffusion_t{t:g}" for t in VAL_TIMES), "diffusion", "rhythm", "loss"}
    assert all(torch.equal(a[k], b[k]) for k in a)
    per_t = torch.stack([a[f"diffusion_t{t:g}"] for t in VAL_TIMES])
    assert len(set(per_t.tolist())) == 5  # each t is its own value
    torch.testing.assert_close(a["diffusion"], per_t.mean())
    torch.testing.assert_close(a["loss"], a["diffusion"] + a["rhythm"])
    c = validation_loss(model, batch, latents, seed=1)
    assert not torch.equal(c["diffusion"], a["diffusion"]) and torch.equal(c["rhythm"], a["rhythm"])
    # training draws t, noise and dropout at random: two calls differ
    torch.manual_seed(1)
    assert not torch.equal(model.training_loss(batch, latents)["loss"], model.training_loss(batch, latents)["loss"])


def test_audio_is_encoded_by_the_vae_and_needs_one(config, tiny_oobleck_repo):
    vae = OfficialVAE.from_pretrained(str(tiny_oobleck_repo / "vae"))
    audio = 0.1 * torch.randn(2, 2, 2 * 44100, generator=torch.Generator().manual_seed(0))
    module = DiffV2MModule(config, vae)
    a = module.batch_latents({"audio": audio}, generator=torch.Generator().manual_seed(3))
    b = module.batch_latents({"audio": audio}, generator=torch.Generator().manual_seed(3))
    assert a.shape == (2, 8, 43) and torch.equal(a, b) and not a.requires_grad
    latents = torch.randn(2, 8, 43)
    assert torch.equal(module.batch_latents({"latents": latents, "audio": audio}), latents)  # pre-encoded first
    with pytest.raises(V2MError, match="no VAE"):
        DiffV2MModule(config).batch_latents({"audio": audio})
    with pytest.raises(V2MError, match="4 channels but the model takes 8"):
        module.batch_latents({"latents": torch.randn(2, 4, 43)})


def test_fit_refuses_what_cannot_train(config, dataset, tmp_path):
    # no pre-encoded latents and no VAE to encode the audio with
    plain = tmp_path / "plain"
    shutil.copytree(dataset, plain)
    summary = json.loads((plain / "dataset.json").read_text())
    (plain / "dataset.json").write_text(json.dumps({**summary, "clips_with_codec": 0}))
    with pytest.raises(V2MError, match="pass --vae"):
        fit(config, plain, tmp_path / "a", max_steps=1, **FAST)
    # a model whose latent channels are not the dataset VAE's
    with pytest.raises(V2MError, match="does not fit the model"):
        fit(replace(config, dit=replace(config.dit, io_channels=4)), dataset, tmp_path / "b", max_steps=1, **FAST)
    with pytest.raises(V2MError, match="no config"):
        fit(None, dataset, tmp_path / "c", max_steps=1, **FAST)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_samples_go_to_tensorboard(config, dataset, tmp_path, tiny_oobleck_repo):
    """With a TensorBoard logger the samples are also logged with add_audio (a stand-in logger
    records the calls: tensorboard itself is not needed for the test)."""
    from lightning.pytorch.loggers import TensorBoardLogger
    from lightning.pytorch.loggers.logger import Logger

    from v2m.data.modules import DiffV2MDataModule

    class Writer:
        calls: list = []

        def add_audio(self, tag, audio, global_step=None, sample_rate=None):
            self.calls.append((tag, tuple(audio.shape), global_step, sample_rate))

    class StandIn(TensorBoardLogger):
        def __init__(self):
            Logger.__init__(self)
            self._writer = Writer()

        name, version = "standin", 0
        log_dir = save_dir = root_dir = property(lambda self: str(tmp_path / "tb"))
        experiment = property(lambda self: self._writer)

        def log_metrics(self, metrics, step=None):
            pass

        def log_hyperparams(self, params, metrics=None):
            pass

        def log_graph(self, model, input_array=None):
            pass

        def save(self):
            pass

        def finalize(self, status):
            pass

    vae = OfficialVAE.from_pretrained(str(tiny_oobleck_repo / "vae"))
    module = DiffV2MModule(config, vae, sample_every=1, sample_steps=2, sampler="ddim", sample_count=1)
    trainer = pl.Trainer(max_steps=1, logger=StandIn(), enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, accelerator="cpu")
    trainer.fit(module, datamodule=DiffV2MDataModule(dataset, batch_size=2, crop_seconds=2))
    assert Writer.calls == [("samples/0", (1, 43 * 2048), 1, 44100)]
    assert [p.name for p in (tmp_path / "tb" / "samples").glob("*.wav")] == ["step00000001_0.wav"]


def test_v2m_train_command(config, dataset, tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.to_dict()))
    out = tmp_path / "run"
    args = ["train", "diffv2m", "--config", str(path), "--data", str(dataset), "-o", str(out), "--batch-size", "2",
            "--workers", "0", "--precision", "32-true", "--crop-seconds", "2", "--devices", "1", "-q"]
    assert main([*args, "--max-steps", "2"]) == 0, capsys.readouterr().err
    assert (out / "checkpoints" / "last.ckpt").exists()
    assert DiffV2MPipeline.load(str(out / "final"), device="cpu").config == config
    assert main([*args, "--max-steps", "3"]) == 0  # resumes from last.ckpt
    step = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["global_step"]
    assert step == 3


def test_a_killed_training_resumes(config, dataset, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.to_dict()))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "v2m", "train", "diffv2m", "--config", str(path), "--data", str(dataset), "-o",
           str(out), "--batch-size", "1", "--workers", "0", "--precision", "32-true", "--crop-seconds", "2",
           "--devices", "1", "--checkpoint-every", "1", "-q"]
    proc = subprocess.Popen([*cmd, "--max-steps", "10000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while time.time() < deadline and not last.exists():
        time.sleep(0.1)
    time.sleep(1.0)  # a few more steps, killed wherever it is
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = torch.load(last, map_location="cpu", weights_only=True)["global_step"]  # never a torn file
    assert saved >= 1
    target = saved + 2
    assert subprocess.run([*cmd, "--max-steps", str(target)]).returncode == 0
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == target
    assert (out / "final" / "model.safetensors").exists()
