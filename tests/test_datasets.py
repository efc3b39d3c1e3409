"""Datasets in training: DataLoader workers' randomness, Lightning DataModules, and the official
Diff-V2M layout (export and import)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from v2m.cli import main
from v2m.data.datasets import DiffV2MDataset
from synthetic import corpus_music, write_video
from v2m.media import write_wav


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_clip):
    """A Diff-V2M dataset with CLIP features (tiny CLIP) and no codec: 3 sources, 10 s clips."""
    src = tmp_path_factory.mktemp("mv")
    write_video(src / "a.mp4", duration=20.0, fps=10, size=(64, 48), cut_times=[3.0, 11.0], audio=True)
    write_video(src / "b.mp4", duration=10.0, fps=10, size=(64, 48), cut_times=[6.0], audio=True)
    write_video(src / "c.mp4", duration=10.0, fps=10, size=(64, 48), audio=True)
    write_wav(src / "c.wav", corpus_music("bach/bwv66.6", bpm=96, seconds=10.0).audio, 44100)
    out = tmp_path_factory.mktemp("ds") / "mv"
    assert main(["prepare", str(src), "-o", str(out), "--clip-seconds", "10", "--min-seconds", "5", "--clip",
                 str(tiny_clip), "--no-codec", "--splits", "50/25/25", "-q"]) == 0
    return out


def _starts(ds, workers: int) -> list[float]:
    return [float(b["seconds_start"]) for b in DataLoader(ds, batch_size=1, num_workers=workers)]


def test_workers_draw_their_own_crops(dataset):
    ds = DiffV2MDataset(dataset, split=None, crop_seconds=2, audio=False)
    ds.rows = [r for r in ds.rows if r["seconds"] == 10][:1] * 16  # one clip, 16 times: 9 possible starts
    torch.manual_seed(0)
    starts = _starts(ds, workers=2)
    # items 0, 2, 4... went to worker 0 and 1, 3, 5... to worker 1: a generator copied into both
    # workers would make the two lists equal
    assert starts[0::2] != starts[1::2] and len(set(starts)) > 3
    torch.manual_seed(0)
    assert _starts(ds, workers=2) == starts  # reproducible from the torch seed
    torch.manual_seed(1)
    assert _starts(ds, workers=2) != starts


def test_lightning_datamodule_feeds_a_trainer(dataset):
    import lightning.pytorch as pl

    from v2m.data.modules import DiffV2MDataModule, StadDataModule
    from v2m.errors import V2MError

    summary = json.loads((dataset / "dataset.json").read_text())
    dm = DiffV2MDataModule(dataset, batch_size=2, num_workers=0, crop_seconds=4)
    seen = []

    class Probe(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, _):
            seen.append({k: tuple(v.shape) for k, v in batch.items() if torch.is_tensor(v)})
            return (self.w - batch["odf"].mean()) ** 2

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = pl.Trainer(max_epochs=1, limit_train_batches=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(Probe(), datamodule=dm)
    n = min(2, summary["splits"]["train"])
    assert seen and seen[0]["clip"] == (n, 4, 24) and seen[0]["color"] == (n, 4, 3072)
    assert seen[0]["audio"] == (n, 2, 4 * 44100)  # no codec targets: the audio is served
    assert not dm.datasets["val"].random_crop and dm.datasets["train"].random_crop
    with pytest.raises(V2MError, match="prepared for 'diffv2m'"):
        StadDataModule(dataset)


def test_official_layout_round_trip(dataset, tmp_path, capsys):
    from v2m.data.convert import read_official

    official = tmp_path / "official"
    assert main(["convert", str(dataset), "-o", str(official), "-q"]) == 0
    rows = [json.loads(line) for line in (dataset / "manifest.jsonl").read_text().splitlines()]
    configs = sorted(p.name for p in official.glob("dataset_*.json"))
    assert configs == sorted(f"dataset_{s}.json" for s in {r["split"] for r in rows})
    train = json.loads((official / "dataset_train.json").read_text())
    entry = train["datasets"][0]
    assert train["dataset_type"] == "audio_video_dir" and train["rhythm_type"] == "odf"
    assert entry["class_label"] == 2 and entry["path"] == "train/wav_10/" and entry["video_feat"] == "train/clip_10/"
    info = json.loads((official / "train" / "visualRhythm_10.json").read_text())
    train_rows = [r for r in rows if r["split"] == "train"]
    assert sorted(info) == sorted(r["id"].replace("/", "_") + ".mp4" for r in train_rows)
    # read back as the official loader pairs files: by sorted stem
    clips = read_official(official / "dataset_train.json")
    assert [c.split for c in clips] == ["train"] * len(train_rows)
    for c in clips:
        row = next(r for r in train_rows if r["id"].replace("/", "_") == c.stem)
        with np.load(dataset / row["features"]) as z:
            np.testing.assert_array_equal(np.load(c.clip), z["clip"])
            np.testing.assert_array_equal(np.load(c.color), z["color_hist"])
            np.testing.assert_array_equal(c.scene_cut, z["scene_cut"])
            np.testing.assert_allclose(c.pseudo_beat, z["pseudo_beat"], atol=1e-6)
    # import into a v2m dataset: same features, the same rhythm targets from the same wav
    back = tmp_path / "back"
    assert main(["convert", *(str(p) for p in sorted(official.glob("dataset_*.json"))), "-o", str(back),
                 "--no-codec", "-q"]) == 0
    imported = [json.loads(line) for line in (back / "manifest.jsonl").read_text().splitlines()]
    assert len(imported) == len(rows)
    assert sorted(r["split"] for r in imported) == sorted(r["split"] for r in rows)
    for r in imported:
        original = next(o for o in rows if o["id"].replace("/", "_") == r["id"].split("/")[1])
        with np.load(back / r["features"]) as a, np.load(dataset / original["features"]) as b:
            for key in ("clip", "color_hist", "scene_cut", "odf", "mel", "tempogram"):
                np.testing.assert_allclose(a[key], b[key], atol=1e-4, err_msg=key)
    item = DiffV2MDataset(back, split=None, random_crop=False, max_seconds=10)[0]
    assert item["class_label"] == 2 and item["clip"].shape == (10, 24)
    # exporting again replaces the earlier export; a foreign folder is refused, with one line
    assert main(["convert", str(dataset), "-o", str(official), "-q"]) == 0
    capsys.readouterr()
    assert main(["convert", str(dataset), "-o", str(back), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an earlier v2m export" in err


def test_export_needs_clip_features_and_import_checks_pairs(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    write_video(src / "a.mp4", duration=6.0, fps=10, size=(64, 48), audio=True)
    plain = tmp_path / "plain"
    assert main(["prepare", str(src), "-o", str(plain), "--clip-seconds", "6", "--min-seconds", "6", "--no-clip", "--no-codec",
                 "-q"]) == 0
    assert main(["convert", str(plain), "-o", str(tmp_path / "off"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "no CLIP features" in err and err.count("\n") == 1 and not (tmp_path / "off").exists()
    # an official folder whose wav has no CLIP file of its stem
    root = tmp_path / "o"
    (root / "wav").mkdir(parents=True)
    (root / "clip").mkdir()
    write_wav(root / "wav" / "x.wav", np.zeros((2, 44100), np.float32), 44100)
    np.save(root / "clip" / "y.npy", np.zeros((1, 512), np.float32))
    (root / "info.json").write_text(json.dumps({"x.mp4": {"scene_cut": [0], "pseudo_beats": [0.0]}}))
    (root / "cfg.json").write_text(json.dumps({"dataset_type": "audio_video_dir", "datasets": [
        {"id": "d", "path": "wav", "video_feat": "clip", "video_info": "info.json", "class_label": 2}]}))
    assert main(["convert", str(root / "cfg.json"), "-o", str(tmp_path / "in"), "--no-codec", "-q"]) == 1
    err = capsys.readouterr().err
    assert "x.wav has no CLIP/colour file of its stem" in err and err.count("\n") == 1
