"""`v2m prepare`: clips, targets, manifest, splits, resuming; the official ControllableV2M files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from v2m.cli import main
from v2m.analysis.shot_objects import clip_tensors
from v2m.data.official import load_stad_clip
from v2m.data.prepare import clip_spans, split_of
from v2m.errors import V2MError
from v2m.media import read_audio, write_wav
from synthetic import corpus_music, write_video

from fixture_paths import STAD_EXAMPLE as FIXTURE


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    write_video(d / "a.mp4", duration=23.0, fps=10, size=(64, 48), cut_times=[4.0, 12.0], audio=True)
    write_video(d / "b.mp4", duration=12.0, fps=10, size=(64, 48), cut_times=[6.0], audio=True)
    # a separate music file beside its video: a Bach chorale, not the video's tone
    write_video(d / "c.mp4", duration=10.0, fps=10, size=(64, 48), audio=True)
    write_wav(d / "c.wav", corpus_music("bach/bwv66.6", bpm=96, seconds=10.0).audio, 44100)
    return d


def _manifest(folder):
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def test_clip_spans_handle_the_tail():
    assert clip_spans(23, 10, 5) == [(0.0, 10.0), (10.0, 10.0)]
    assert clip_spans(26, 10, 5) == [(0.0, 10.0), (10.0, 10.0), (20.0, 6.0)]
    assert clip_spans(4, 10, 5) == []


def test_prepare_diffv2m(sources, tmp_path, capsys):
    out = tmp_path / "ds"
    code = main(["prepare", str(sources), "-o", str(out), "--clip-seconds", "10", "--min-seconds", "5",
                 "--no-clip", "-q"])
    assert code == 0, capsys.readouterr().err
    rows = _manifest(out)
    assert [r["duration"] for r in rows if r["source"].endswith("a.mp4")] == [10.0, 10.0]  # 3 s tail dropped
    assert len(rows) == 2 + 1 + 1  # a: 10+10 (+3 dropped), b: 10 (+2 dropped), c: 10
    for r in rows:
        with np.load(out / r["features"], allow_pickle=False) as z:
            T = r["seconds"]
            assert z["odf"].shape == (T,) and z["mel"].shape == (T, 16) and z["tempogram"].shape == (T, 16)
            assert z["color_hist"].shape == (T, 3072) and z["scene_cut"].shape == (T,)
            assert "clip" not in z.files
        assert read_audio(out / r["audio"], 44100).shape == (2, int(r["duration"] * 44100))
    # the video a has a cut at 4 s: its first clip flags second 4
    first = next(r for r in rows if r["id"].endswith("/0") and r["source"].endswith("a.mp4"))
    with np.load(out / first["features"]) as z:
        assert z["scene_cut"][4] == 1
    # music from the file beside the video: the chorale has onsets, the video's tone has none
    c = next(r for r in rows if r["source"].endswith("c.mp4"))
    assert c["music"].endswith("c.wav")
    with np.load(out / c["features"]) as z:
        assert (z["odf"] > 0).sum() >= 5
    summary = json.loads((out / "dataset.json").read_text())
    assert summary["clips"] == 4 and summary["sources"] == 3


def test_prepare_makes_no_hub_deprecation_warning(sources, tmp_path, capsys):
    """Loading the default VAE by its hub id goes through diffusers, which handed huggingface_hub a
    deprecated argument: a two-line UserWarning about `local_dir_use_symlinks` on every run."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["prepare", str(sources / "b.mp4"), "-o", str(tmp_path / "ds"), "--clip-seconds", "10",
                     "--no-clip", "-q"]) == 0
    err = capsys.readouterr().err
    assert "Oobleck VAE weights could not be loaded" in err  # the hub id was tried (offline, not cached)
    assert "local_dir_use_symlinks" not in err + "".join(str(w.message) for w in caught)


def test_splits_follow_the_source_and_stay_put():
    keys = [f"video-{i}" for i in range(200)]
    splits = [split_of(k, (0.8, 0.1, 0.1)) for k in keys]
    assert 0.7 < splits.count("train") / 200 < 0.9 and splits.count("test") > 5
    assert splits == [split_of(k, (0.8, 0.1, 0.1)) for k in keys]  # stable, one source at a time


def test_clips_of_one_video_share_a_split(sources, tmp_path):
    out = tmp_path / "ds"
    main(["prepare", str(sources), "-o", str(out), "--clip-seconds", "5", "--no-clip", "-q", "--min-seconds", "2",
          "--splits", "34/33/33"])
    by_source = {}
    for r in _manifest(out):
        by_source.setdefault(r["source_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_source.values())


def test_prepare_stad_writes_features_and_stats(sources, tmp_path):
    out = tmp_path / "stad"
    assert main(["prepare", str(sources / "a.mp4"), "-o", str(out), "--model", "stad", "--clip-seconds", "10",
                 "--no-clip", "-q"]) == 0
    rows = _manifest(out)
    with np.load(out / rows[0]["features"]) as z:
        assert z["pitch"].shape == (1025, 11) and z["chroma"].shape == (12, 11) and z["loudness"].shape == (11,)
    stats = json.loads((out / "stats.json").read_text())
    assert all(len(stats[k]) == 4 for k in ("pitch", "chroma", "loudness", "spectral_centroid"))
    assert read_audio(out / rows[0]["audio"], 32000, channels=1).shape == (1, 320000)


def test_resume_after_a_kill(sources, tmp_path):
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "v2m", "prepare", str(sources), "-o", str(out), "--clip-seconds", "5",
           "--min-seconds", "2", "--no-clip", "-q"]
    # The first run is killed (SIGKILL, no clean-up) in the middle of its second source, just
    # after that source's first clip is written, from inside the run: a watcher outside it
    # raced the run and sometimes saw the first source only once every source was done.
    killed_midway = (
        "import os, signal, sys\n"
        "from v2m.cli import main\n"
        "from v2m.data import prepare\n"
        "real_source, real_wav, started = prepare.prepare_source, prepare.write_wav, []\n"
        "def source(*args, **kwargs):\n"
        "    started.append(args[0])\n"
        "    return real_source(*args, **kwargs)\n"
        "def wav(*args, **kwargs):\n"
        "    real_wav(*args, **kwargs)\n"
        "    if len(started) == 2:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "prepare.prepare_source, prepare.write_wav = source, wav\n"
        "sys.exit(main(sys.argv[1:]))\n")
    killed = subprocess.run([sys.executable, "-c", killed_midway, *cmd[3:]], capture_output=True, timeout=180)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done_before = {p.name: p.stat().st_mtime_ns for p in (out / "sources").glob("*.json")}
    assert len(done_before) == 1, sorted(done_before)
    assert len(list((out / "clips").rglob("*.wav"))) > 5  # the first source's clips and one of the second's
    rerun = subprocess.run(cmd, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    for name, stamp in done_before.items():  # finished sources are not redone
        assert (out / "sources" / name).stat().st_mtime_ns == stamp
    rows = _manifest(out)
    assert len({r["source_id"] for r in rows}) == 3
    for r in rows:  # every row points at complete, readable files
        with np.load(out / r["features"], allow_pickle=False) as z:
            assert z["odf"].shape == (r["seconds"],)
        assert read_audio(out / r["audio"], 44100).shape[1] == int(round(r["duration"] * 44100))


def test_official_stad_fixture_loads():
    shots = load_stad_clip(FIXTURE)
    assert len(shots) == 5
    assert [s.seconds for s in shots] == [3, 8, 10, 7, 3]
    for s in shots:
        assert s.semantic.shape == (5, 768) and s.semantic.dtype == np.float32
        assert s.hist.shape == (5, 3, 256) and s.area.shape == (5, 1) and s.start.shape == (5, 2)
        assert np.isclose(s.area.sum(), 1.0, atol=1e-3)
        assert np.all(np.abs(s.start) <= 1.0)
    t = clip_tensors(shots)
    assert t["semantic"].shape == (10, 5, 768) and t["move"].shape == (35, 10, 5, 2)
    assert t["shot_mask"].tolist() == [True] * 5 + [False] * 5
    assert t["time_mask"].sum() == 31 and t["shot_of_second"][:4].tolist() == [0, 0, 0, 1]
    np.testing.assert_array_equal(t["move"][3:11, 1], np.moveaxis(shots[1].position, 2, 0))


def test_official_stad_files_written_as_the_official_ones(tmp_path):
    import zipfile

    from v2m.data.official import save_stad_clip

    shots = load_stad_clip(FIXTURE)
    save_stad_clip(shots, tmp_path)
    for i, shot in enumerate(load_stad_clip(tmp_path)):
        for name in ("semantic", "hist", "area", "start", "position"):
            np.testing.assert_array_equal(getattr(shot, name), getattr(shots[i], name), err_msg=name)
        ours, theirs = np.load(tmp_path / f"{i}.npz"), np.load(FIXTURE / f"{i}.npz")
        assert {k: (ours[k].dtype, ours[k].shape) for k in ours.files} == \
            {k: (theirs[k].dtype, theirs[k].shape) for k in theirs.files}
        # the official loader reads members as 'area.npy' ...
        assert sorted(zipfile.ZipFile(tmp_path / f"{i}.npz").namelist()) == \
            sorted(zipfile.ZipFile(FIXTURE / f"{i}.npz").namelist())


def test_datasets_pad_mask_and_crop(sources, tmp_path):
    import torch
    from torch.utils.data import DataLoader

    from v2m.data.datasets import DiffV2MDataset, StadDataset, target_shift

    out = tmp_path / "ds"
    main(["prepare", str(sources), "-o", str(out), "--clip-seconds", "10", "--min-seconds", "5", "--no-clip",
          "--splits", "100/0/0", "-q"])
    ds = DiffV2MDataset(out, split="train", max_seconds=12, random_crop=False)
    assert len(ds) == 4
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["color"].shape == (4, 12, 3072) and batch["clip"].shape == (4, 12, 512)
    assert batch["mask"].sum(1).tolist() == [10, 10, 10, 10]  # 10 real seconds, 2 padded
    assert batch["audio"].shape == (4, 2, 12 * 44100) and batch["audio_mask"].sum(1).tolist() == [441000] * 4
    assert not batch["has_clip"].any()
    odf = batch["odf"][0, :10]
    assert abs(float(odf.mean())) < 1e-4  # z-scored per clip over its real seconds
    # random crops: whole-second windows inside the clip
    crops = DiffV2MDataset(out, split="train", crop_seconds=4, random_crop=True, seed=1)
    starts = {crops[0]["seconds_start"] for _ in range(20)}
    assert len(starts) > 1 and all(0 <= s <= 6 for s in starts)
    stad_out = tmp_path / "stad"
    main(["prepare", str(sources / "a.mp4"), "-o", str(stad_out), "--model", "stad", "--clip-seconds", "10",
          "--no-clip", "--splits", "100/0/0", "-q"])
    item = StadDataset(stad_out, split="train", max_seconds=12, random_crop=False)[0]
    assert item["pitch"].shape == (12, 1025) and item["chroma"].shape == (12, 12) and item["loudness"].shape == (12,)
    assert item["audio"].shape == (1, 12 * 32000)
    codes = torch.arange(1, 301).repeat(4, 1)
    g = torch.Generator().manual_seed(0)
    shifted = [target_shift(codes, g) for _ in range(20)]
    assert any(torch.equal(s, codes) for s in shifted) and any(not torch.equal(s, codes) for s in shifted)
    for s in shifted:
        n = int((s[0] == 0).sum())
        assert s.shape == codes.shape and torch.equal(s[:, : 300 - n], codes[:, n:])


def test_prepare_stad_with_objects(sources, tmp_path, tiny_sam, tiny_clip, capsys, monkeypatch):
    from v2m.analysis.semantic import ClipEmbedder
    from v2m.analysis.shot_objects import unpack_shots
    from v2m.data.datasets import StadDataset
    from v2m.data.modules import StadDataModule

    loads = []  # CLIP serves the analysis and the objects, and is loaded once for both
    real_init = ClipEmbedder.__init__
    monkeypatch.setattr(ClipEmbedder, "__init__", lambda self, *a, **k: loads.append(a) or real_init(self, *a, **k))
    out = tmp_path / "stad"
    assert main(["prepare", str(sources / "a.mp4"), "-o", str(out), "--model", "stad", "--clip-seconds", "10",
                 "--clip", str(tiny_clip), "--sam", str(tiny_sam), "--no-codec", "--splits", "100/0/0", "--device",
                 "cpu", "-q"]) == 0, capsys.readouterr().err
    assert len(loads) == 1, loads
    rows = _manifest(out)
    assert [r["objects"] for r in rows] == [True, True]
    assert json.loads((out / "dataset.json").read_text())["clips_with_objects"] == 2
    for r in rows:  # each clip holds the shots of its own seconds (cuts at 4 and 12 s)
        with np.load(out / r["features"], allow_pickle=False) as z:
            shots = unpack_shots(z)
        assert sum(s.seconds for s in shots) == r["seconds"] == 10 and len(shots) == 2
        assert shots[0].semantic.shape == (5, 24)
    item = StadDataset(out, split="train", max_seconds=12, random_crop=False)[1]
    assert item["has_objects"] and item["semantic"].shape == (10, 5, 24) and item["move"].shape == (12, 10, 5, 2)
    assert torch.equal(item["time_mask"], item["mask"])  # the objects cover exactly the clip's seconds
    crop = StadDataset(out, split="train", crop_seconds=4, random_crop=True, seed=3)[0]
    assert crop["time_mask"].all() and crop["move"].shape[0] == 4
    # a dataset made without objects cannot train ControllableV2M
    plain = tmp_path / "plain"
    assert main(["prepare", str(sources / "a.mp4"), "-o", str(plain), "--model", "stad", "--clip-seconds", "10",
                 "--no-clip", "--no-codec", "-q"]) == 0
    assert "without objects" in capsys.readouterr().err  # the default SAM needs CLIP: one warning
    with pytest.raises(V2MError, match="without objects"):
        StadDataModule(plain)
