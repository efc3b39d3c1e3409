"""Moving datasets between v2m and the official Diff-V2M layout (``v2m convert``).

The official code (Tayjsl97/Diff-V2M-Code) trains from a dataset config JSON::

    {"dataset_type": "audio_video_dir", "rhythm_type": "odf", "random_crop": true,
     "datasets": [{"id": "BGM909", "path": ".../wav_30/", "video_feat": ".../clip_30/",
                   "video_color": ".../color_30/", "video_info": ".../visualRhythm_30.json",
                   "class_label": 2}]}

``path`` holds the clips' wav files, ``video_feat`` and ``video_color`` one ``<stem>.npy`` each
(CLIP ``[T, 512]``, colour ``[T, 3072]``), ``video_info`` the scene cuts and visual beats keyed
``<stem>.mp4``; files are paired by sorted stem, so every clip needs all of them.

:func:`export_official` writes a prepared Diff-V2M dataset that way: ``<split>/wav_N/``,
``clip_N/``, ``color_N/``, ``visualRhythm_N.json`` (N = the clip length) and one config
``dataset_<split>.json`` per split whose paths are relative to the output folder (run the
official training from there). The wav files are hard links when the file system allows.
:func:`read_official` reads such a config (paths relative to the config's folder, else to the
working directory, as the official code resolves them); :func:`import_official` turns it into
a v2m dataset, computing the rhythm targets from the wavs as ``v2m prepare`` does.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import music
from ..analysis.export import write_features
from ..analysis.timeline import fit_length
from ..errors import V2MError
from ..fsutil import atomic_dir, atomic_path, write_bytes_atomic
from ..media import read_audio, write_wav
from .datasets import read_manifest
from .prepare import PrepareSettings, write_manifest

MARKER = "v2m-export.json"
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
OFFICIAL_AUDIO_EXTENSIONS = (".wav", ".mp3", ".flac", ".ogg", ".aif", ".opus")  # what the official loader scans


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        with atomic_path(dst, suffix=dst.suffix) as tmp:
            shutil.copyfile(src, tmp)


def export_official(root: str | os.PathLike, out_dir: str | os.PathLike, class_label: int = 2,
                    name: str | None = None) -> list[Path]:
    """Write the prepared Diff-V2M dataset ``root`` in the official layout under ``out_dir``;
    returns the dataset config files written (one per non-empty split).

    The folder is built beside ``out_dir`` and moved into place at the end; an existing
    ``out_dir`` is replaced only when it is empty or an earlier export."""
    root, out = Path(root), Path(out_dir)
    try:
        summary = json.loads((root / "dataset.json").read_text())
    except (OSError, ValueError):
        raise V2MError("is not a prepared dataset (no readable dataset.json)", root) from None
    if summary.get("model") != "diffv2m":
        raise V2MError(f"was prepared for {summary.get('model')!r}; the Diff-V2M layout needs a dataset made by "
                       "`v2m prepare --model diffv2m`", root)
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise V2MError("exists and is not an earlier v2m export; choose an empty or new folder", out)
    rows = read_manifest(root)
    if not rows:
        raise V2MError("has no clips", root)
    n = int(round(summary["settings"]["clip_seconds"]))
    name = name or root.resolve().name
    configs = []
    with atomic_dir(out) as staging:
        for split in ("train", "val", "test"):
            chosen = [r for r in rows if r["split"] == split]
            if not chosen:
                continue
            items = []
            for r in chosen:
                stem = r["id"].replace("/", "_")
                with np.load(root / r["features"], allow_pickle=False) as z:
                    if "clip" not in z.files:
                        raise V2MError(f"clip {r['id']} has no CLIP features (made by `v2m prepare --no-clip` or without "
                                       "the CLIP weights); the official layout pairs every wav with a CLIP file", root)
                    items.append((stem, z["clip"], z["color_hist"], z["scene_cut"], z["pseudo_beat"]))
                _link_or_copy(root / r["audio"], staging / split / f"wav_{n}" / f"{stem}.wav")
            write_features(staging / split, items, clip_dir=f"clip_{n}", color_dir=f"color_{n}",
                           info_file=f"visualRhythm_{n}.json")
            config = {"dataset_type": "audio_video_dir", "rhythm_type": "odf",
                      "datasets": [{"id": name, "path": f"{split}/wav_{n}/", "video_feat": f"{split}/clip_{n}/",
                                    "video_info": f"{split}/visualRhythm_{n}.json",
                                    "video_color": f"{split}/color_{n}/", "class_label": class_label}],
                      "random_crop": True}
            if split != "train":
                config["drop_last"] = False
            (staging / f"dataset_{split}.json").write_text(json.dumps(config, indent=4))
            configs.append(f"dataset_{split}.json")
        (staging / MARKER).write_text(json.dumps({"from": str(root.resolve()), "configs": configs}))
    return [out / c for c in configs]


@dataclass
class OfficialClip:
    """One clip of an official dataset config, paired by stem as the official loader does."""

    stem: str
    dataset: str
    split: str
    audio: Path
    clip: Path
    color: Path | None
    scene_cut: np.ndarray
    pseudo_beat: np.ndarray
    class_label: int | None


def _files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    return sorted((p for p in folder.rglob("*") if p.suffix.lower() in extensions and p.is_file()),
                  key=lambda p: p.stem)


def _split_from(path: str, default: str) -> str:
    for part in reversed(Path(path).parts):
        if part.lower() in SPLIT_NAMES:
            return SPLIT_NAMES[part.lower()]
    return default


def read_official(config_path: str | os.PathLike, split: str | None = None) -> list[OfficialClip]:
    """Every clip of an official ``audio_video_dir`` dataset config. A clip's split is ``split``
    when given, else the last train/val/test folder name in its dataset's path, else train."""
    config_path = Path(config_path)
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as e:
        raise V2MError(f"cannot be read as a dataset config ({e})", config_path) from None
    if config.get("dataset_type") != "audio_video_dir" or not config.get("datasets"):
        raise V2MError("is not an official Diff-V2M dataset config (dataset_type audio_video_dir with datasets)",
                       config_path)

    def resolve(p: str) -> Path:
        beside = config_path.parent / p
        return beside if beside.exists() else Path(p)

    clips = []
    for entry in config["datasets"]:
        try:
            audio_dir, feat_dir, info_path = (resolve(entry[k]) for k in ("path", "video_feat", "video_info"))
        except KeyError as e:
            raise V2MError(f"dataset {entry.get('id', '?')!r} has no {e.args[0]!r}", config_path) from None
        for folder in (audio_dir, feat_dir, info_path):
            if not folder.exists():
                raise V2MError(f"dataset {entry.get('id', '?')!r}: {folder} does not exist", config_path)
        audios, feats = _files(audio_dir, OFFICIAL_AUDIO_EXTENSIONS), _files(feat_dir, (".npy",))
        colors = _files(resolve(entry["video_color"]), (".npy",)) if entry.get("video_color") else None
        if len(audios) != len(feats) or (colors is not None and len(colors) != len(audios)):
            raise V2MError(f"dataset {entry.get('id', '?')!r}: {len(audios)} audio files but {len(feats)} CLIP "
                           f"and {len(colors or [])} colour files", config_path)
        info = json.loads(info_path.read_text())
        for k, (a, v) in enumerate(zip(audios, feats)):
            if a.stem != v.stem or (colors is not None and colors[k].stem != a.stem):
                raise V2MError(f"dataset {entry.get('id', '?')!r}: {a.name} has no CLIP/colour file of its stem",
                               config_path)
            meta = info.get(f"{a.stem}.mp4")
            if meta is None:
                raise V2MError(f"{a.stem}.mp4 is not in {info_path.name}", config_path)
            clips.append(OfficialClip(a.stem, str(entry.get("id", "")), split or _split_from(entry["path"], "train"),
                                      a, v, colors[k] if colors is not None else None,
                                      np.asarray(meta["scene_cut"], np.int64),
                                      np.asarray(meta["pseudo_beats"], np.float32), entry.get("class_label")))
    return clips


def import_official(config_paths: list[str], out_dir: str | os.PathLike, split: str | None = None, codec=None,
                    progress: bool = True) -> tuple[dict, list[tuple[str, str]]]:
    """Turn official dataset configs into a v2m Diff-V2M dataset (``DiffV2MDataset`` reads it);
    returns the dataset summary and the clips that failed."""
    from tqdm.auto import tqdm

    clips = [c for p in config_paths for c in read_official(p, split)]
    out = Path(out_dir)
    settings = PrepareSettings(model="diffv2m", clip_seconds=30.0, min_seconds=1.0,
                               codec=codec.info.source if codec is not None else None)
    sr = 44100
    failed: list[tuple[str, str]] = []
    by_dataset: dict[str, list[dict]] = {}
    for c in tqdm(clips, unit="clip", desc="import", disable=None if progress else True, file=sys.stderr):
        try:
            y = read_audio(c.audio, sr, channels=2)
            seconds = music.n_seconds(y.shape[1], sr)
            arrays = {"clip": fit_length(np.load(c.clip, allow_pickle=False).astype(np.float32), seconds),
                      "scene_cut": fit_length(c.scene_cut, seconds), "pseudo_beat": fit_length(c.pseudo_beat, seconds),
                      "odf": music.odf_per_second(y, sr), "mel": music.lowres_mel(y, sr),
                      "tempogram": music.lowres_tempogram(y, sr)}
            if c.color is None:
                raise V2MError("has no colour features (the config has no video_color)", c.audio)
            arrays["color_hist"] = fit_length(np.load(c.color, allow_pickle=False).astype(np.float32), seconds)
            if codec is not None:
                arrays.update(codec.encode(y, sr))
        except V2MError as e:
            failed.append((str(c.audio), e.message))
            continue
        except (OSError, ValueError) as e:
            failed.append((str(c.audio), f"cannot be read ({e})"))
            continue
        sid = f"{c.dataset or 'official'}-{c.split}"
        rel = f"clips/{sid}/{c.stem}"
        with atomic_path(out / f"{rel}.npz", suffix=".npz") as tmp:
            np.savez(tmp, **arrays)
        write_wav(out / f"{rel}.wav", y, sr)
        codec_row = None if codec is None else {**codec.info.__dict__, "frame_rate": codec.info.frame_rate}
        by_dataset.setdefault(sid, []).append(
            {"id": f"{sid}/{c.stem}", "source": str(c.audio), "music": str(c.audio), "source_id": f"{sid}/{c.stem}",
             "split": c.split, "start": 0.0, "duration": round(y.shape[1] / sr, 6), "seconds": seconds,
             "features": f"{rel}.npz", "audio": f"{rel}.wav", "sample_rate": sr, "semantics": "official",
             "class_label": c.class_label, "codec": codec_row})
    for sid, rows in by_dataset.items():
        write_bytes_atomic(out / "sources" / f"{sid}.json",
                           json.dumps({"settings_key": settings.key(), "content_key": None,
                                       "codec": codec is not None, "rows": rows}).encode())
    summary = write_manifest(str(out), settings, origin=[str(Path(p).resolve()) for p in config_paths])
    return summary, failed
