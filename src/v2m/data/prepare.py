"""`v2m prepare`: music videos -> a training-ready dataset for Diff-V2M or ControllableV2M.

:func:`run_prepare` loads CLIP, the codec and SAM once, takes its shard's share of the sources,
skips the finished ones, runs :func:`prepare_source` on the others (here or in worker
processes) and ends with :func:`publish_manifest`. :func:`prepare_source` analyses one source,
decodes its music once, writes each clip's ``.npz`` and ``.wav``, and then, last and atomically,
``sources/<source_id>.json``: that file is what marks the source finished.
:func:`write_manifest` rebuilds ``manifest.jsonl``, ``stats.json`` and ``dataset.json`` from the
source files alone, so writers that read the same source files write the same bytes. The
shard protocol of :func:`publish_manifest` (markers, no locks) relies on these two properties.
The folder, the arrays and the shard protocol step by step: docs/datasets.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import music
from ..analysis import AnalysisSettings, analyze_video
from ..analysis.batch import load_embedder
from ..analysis.objects import DEFAULT_SAM, ObjectDecomposer
from ..analysis.semantic import ALIASES, ClipEmbedder
from ..analysis.video import content_key
from ..codecs import DEFAULT_SOURCE, MODEL_CODEC, AudioCodec, load_codec
from ..errors import MediaError, V2MError, WeightsUnavailable
from ..fsutil import atomic_path, check_output, find_files, nothing_found, remove_stale_parts, write_bytes_atomic
from ..media import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, quantize_pcm16, read_audio, write_wav
from ..analysis.shot_objects import pack_shots, window_shots
from ..workers import run_jobs, runs_here, threads_per_worker

DEFAULT = "default"  # PrepareSettings.for_model: the model's own weights
MODELS = {"diffv2m": {"sample_rate": 44100, "channels": 2}, "stad": {"sample_rate": 32000, "channels": 1}}
TIMELINE_KEYS = ("scene_cut", "pseudo_beat", "motion", "color_hist", "brightness", "saturation", "warmth")


@dataclass(frozen=True)
class PrepareSettings:
    model: str = "diffv2m"
    clip_seconds: float = 30.0
    min_seconds: float = 10.0
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    codec: str | None = None  # codec weights (hub id or directory) for the model's codec; None: no codes
    sam: str | None = None  # stad: SAM weights for the object decomposition; None: no objects
    n_objects: int = 5  # stad: objects per shot (4 + background)

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        if not (self.clip_seconds >= 1 and 0 < self.min_seconds <= self.clip_seconds):
            raise ValueError("need clip length >= 1 s and 0 < minimum clip length <= clip length")
        if abs(sum(self.splits) - 1.0) > 1e-6 or min(self.splits) < 0:
            raise ValueError("split fractions must be >= 0 and add up to 1 (e.g. 80/10/10)")

    @classmethod
    def for_model(cls, model: str, *, clip: str | None = DEFAULT, codec: str | None = DEFAULT,
                  sam: str | None = DEFAULT, device: str = "auto", **kwargs) -> "PrepareSettings":
        """Settings for ``model`` where ``clip``, ``codec`` and ``sam`` are weights (hub id or
        folder), :data:`DEFAULT` for the model's own (CLIP as it was trained with, its codec,
        SAM for stad) or None for none. Other keywords are fields."""
        if clip == DEFAULT:
            clip = ALIASES[model]
        if codec == DEFAULT:
            codec = DEFAULT_SOURCE[MODEL_CODEC[model]]
        if model != "stad":
            sam = None  # only ControllableV2M's datasets hold objects
        elif sam == DEFAULT:
            sam = DEFAULT_SAM
        return cls(model=model, codec=codec, sam=sam, analysis=AnalysisSettings(clip=clip, device=device), **kwargs)

    def key(self) -> str:
        d = asdict(self)
        d["analysis"] = self.analysis.key()
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def parse_splits(text: str) -> tuple[float, float, float]:
    """``"80/10/10"`` -> (0.8, 0.1, 0.1)."""
    try:
        parts = [float(x) for x in text.split("/")]
    except ValueError:
        raise ValueError(f"splits must look like 80/10/10 (got {text!r})") from None
    if len(parts) != 3 or sum(parts) <= 0 or min(parts) < 0:
        raise ValueError(f"splits must be three non-negative numbers, e.g. 80/10/10 (got {text!r})")
    total = sum(parts)
    return tuple(p / total for p in parts)  # type: ignore[return-value]


def split_of(key: str, splits: tuple[float, float, float]) -> str:
    """The split of a source, from its content key: stable, and independent of other sources."""
    u = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0x100000000
    return "train" if u < splits[0] else "val" if u < splits[0] + splits[1] else "test"


def source_id(path: str, key: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem)[:60] or "video"
    return f"{stem}-{key[:8]}"


def music_file(video: str) -> str:
    """The music of a source: an audio file with the same stem beside it, else the video."""
    base = os.path.splitext(video)[0]
    for ext in AUDIO_EXTENSIONS:
        if os.path.isfile(base + ext):
            return base + ext
    return video


def clip_spans(duration: float, clip_seconds: float, min_seconds: float) -> list[tuple[float, float]]:
    """Consecutive clips; a tail of at least ``min_seconds`` is a shorter clip."""
    spans, start = [], 0.0
    while start < duration - 1e-6:
        length = min(clip_seconds, duration - start)
        if length >= min_seconds - 1e-6:
            spans.append((start, length))
        start += clip_seconds
    return spans


def _timeline_slice(analysis, start: float, length: float) -> dict[str, np.ndarray]:
    a, n = int(round(start)), int(np.ceil(length - 1e-6))
    out = {k: np.asarray(getattr(analysis, k))[a : a + n] for k in TIMELINE_KEYS}
    if analysis.clip is not None:
        out["clip"] = analysis.clip[a : a + n]
    return out


def prepare_source(video: str, out_dir: str, settings: PrepareSettings, embedder=None, note=None,
                   key: str | None = None, codec: AudioCodec | None = None,
                   objects: ObjectDecomposer | None = None) -> list[dict]:
    """Analyse one source and write its clips; returns the manifest rows (docs/datasets.md).
    ``key`` is the source's content key when already computed; ``codec`` adds codec targets;
    ``objects`` (SAM and CLIP, for a stad dataset) adds the objects."""
    key = key or content_key(video)
    sid = source_id(video, key)
    done_path = Path(out_dir) / "sources" / f"{sid}.json"
    analysis = analyze_video(video, settings.analysis, embedder=embedder, semantics_note=note, source_key=key)
    cfg = MODELS[settings.model]
    sr = cfg["sample_rate"]
    src_music = music_file(video)
    audio = read_audio(src_music, sr, channels=cfg["channels"])
    if audio.shape[1] == 0:
        raise MediaError("has no audio to learn from (no soundtrack and no audio file beside it)", video)
    duration = min(analysis.duration, audio.shape[1] / sr)
    split = split_of(key, settings.splits)
    codec_row = None if codec is None else {**asdict(codec.info), "frame_rate": codec.info.frame_rate}
    shots = None
    if objects is not None and settings.model == "stad":
        shots = objects.of_analysis(analysis)
    rows = []
    for k, (start, length) in enumerate(clip_spans(duration, settings.clip_seconds, settings.min_seconds)):
        # the clip as its wav file will hold it, so that targets recomputed from the file agree
        y = quantize_pcm16(audio[:, int(round(start * sr)) : int(round((start + length) * sr))])
        arrays = _timeline_slice(analysis, start, length)
        if settings.model == "diffv2m":
            arrays.update(odf=music.odf_per_second(y, sr), mel=music.lowres_mel(y, sr),
                          tempogram=music.lowres_tempogram(y, sr))
        else:
            arrays.update(music.stad_features(y, sr))
        if codec is not None:
            arrays.update(codec.encode(y, sr))
        if shots is not None:
            arrays.update(pack_shots(window_shots(shots, int(round(start)), int(np.ceil(length - 1e-6)))))
        rel = f"clips/{sid}/{k}"
        with atomic_path(Path(out_dir) / f"{rel}.npz", suffix=".npz") as tmp:
            np.savez(tmp, **arrays)
        write_wav(Path(out_dir) / f"{rel}.wav", y, sr)
        rows.append({"id": f"{sid}/{k}", "source": video, "music": src_music, "source_id": sid, "split": split,
                     "start": round(start, 6), "duration": round(length, 6), "seconds": int(np.ceil(length - 1e-6)),
                     "features": f"{rel}.npz", "audio": f"{rel}.wav", "sample_rate": sr,
                     "semantics": analysis.meta["semantics"], "codec": codec_row, "objects": shots is not None})
    if not rows:
        raise MediaError(f"is shorter than the minimum clip ({settings.min_seconds:g} s)", video)
    write_bytes_atomic(done_path, json.dumps({"settings_key": settings.key(), "content_key": key,
                                              "codec": codec is not None, "objects": shots is not None,
                                              "rows": rows}).encode())
    return rows


def _find_sources(inputs: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    found, missing = find_files(inputs, VIDEO_EXTENSIONS)
    return sorted(path for path, _ in found), [(raw, "file not found") for raw in missing]


def _is_done(video: str, key: str, out_dir: str, settings: PrepareSettings, with_codec: bool,
             with_objects: bool = False) -> bool:
    try:
        data = json.loads((Path(out_dir) / "sources" / f"{source_id(video, key)}.json").read_text())
    except (OSError, ValueError):
        return False
    return (data.get("settings_key") == settings.key() and data.get("content_key") == key
            and (data.get("codec") or not with_codec) and (data.get("objects") or not with_objects))


def open_codec(settings: PrepareSettings, required: bool, warn=print) -> AudioCodec | None:
    """The codec of ``settings`` loaded, or None. When the weights cannot be loaded, raises if
    ``required``, else warns once and the dataset goes without codec targets."""
    if settings.codec is None:
        return None
    try:
        return load_codec(MODEL_CODEC[settings.model], settings.codec, device=settings.analysis.device,
                          flag="--no-codec")
    except WeightsUnavailable as e:
        if required:
            raise
        warn(f"v2m: warning: {e}; preparing without codec targets (re-run to add them once the weights load)")
        return None


def open_objects(settings: PrepareSettings, embedder: ClipEmbedder | None, required: bool,
                 warn=print) -> ObjectDecomposer | None:
    """SAM, with the analysis CLIP ``embedder``, for the objects of a stad dataset, or None.
    When either is missing: raises if ``required``, else warns once and the dataset goes
    without objects (a later run adds them)."""
    if settings.model != "stad" or settings.sam is None:
        return None
    try:
        if embedder is None:
            raise WeightsUnavailable("the objects need CLIP (ViT-L/14-336): drop --no-clip, give a --clip that "
                                     "loads, or use --no-objects")
        return ObjectDecomposer(settings.sam, device=settings.analysis.device, n_objects=settings.n_objects,
                                embedder=embedder, flag="--no-objects")
    except WeightsUnavailable as e:
        if required:
            raise
        warn(f"v2m: warning: {e}; preparing without objects (re-run to add them once the weights load)")
        return None


_WORKER: dict = {}


def _init_worker(settings: PrepareSettings, with_codec: bool, torch_threads: int, with_objects: bool) -> None:
    """A worker process loads its own CLIP, codec and SAM (what the main process found loadable)."""
    import torch

    torch.set_num_threads(torch_threads)
    embedder, note = load_embedder(settings.analysis, required=False, warn=lambda _: None)
    codec = open_codec(settings, required=True) if with_codec else None
    objects = open_objects(settings, embedder, required=True) if with_objects else None
    _WORKER.update(settings=settings, embedder=embedder, note=note, codec=codec, objects=objects)


def _run(job: tuple[str, str, str]) -> tuple[str, str | None]:
    video, key, out_dir = job
    try:
        prepare_source(video, out_dir, _WORKER["settings"], _WORKER["embedder"], _WORKER["note"], key=key,
                       codec=_WORKER["codec"], objects=_WORKER["objects"])
        return video, None
    except V2MError as e:
        return video, e.message
    except Exception as e:  # one bad source must not stop the run
        return video, f"unexpected error: {type(e).__name__}: {e}"


def _source_files(out_dir: str) -> dict[str, bytes]:
    """The bytes of every finished source (``sources/*.json``) by file name, in name order, each
    read once: a manifest is made from exactly the bytes its digest covers."""
    files = {}
    for f in sorted((Path(out_dir) / "sources").glob("*.json")):
        try:
            files[f.name] = f.read_bytes()
        except FileNotFoundError:  # removed since the listing
            pass
    return files


def sources_digest(files: dict[str, bytes]) -> str:
    """A fingerprint of source files (their names and bytes): equal digests, equal manifests."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{name}\0{hashlib.sha256(files[name]).hexdigest()}\n".encode())
    return h.hexdigest()


def write_manifest(out_dir: str, settings: PrepareSettings, origin=None) -> dict:
    """Rebuild ``manifest.jsonl``, ``stats.json`` (stad) and ``dataset.json`` (last) from the
    finished sources as they are now; returns the dataset summary. The three files are a function
    of the source files alone, so writers that read the same sources write the same bytes;
    ``dataset.json`` records the digest of what was read (``sources_digest``). ``origin``: what
    the clips were imported from (``v2m convert``), when not made by ``v2m prepare``."""
    files = _source_files(out_dir)
    rows = []
    for raw in files.values():
        try:
            data = json.loads(raw)
        except ValueError:  # not a finished source: the next run redoes it (see _is_done)
            continue
        if data.get("settings_key") == settings.key():
            rows += data["rows"]
    write_bytes_atomic(Path(out_dir) / "manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    summary = {"format": "v2m-dataset", "version": 1, "model": settings.model, "clips": len(rows),
               "sources": len({r["source_id"] for r in rows}), "hours": round(sum(r["duration"] for r in rows) / 3600, 4),
               "splits": {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")},
               "codec": next((r["codec"] for r in rows if r.get("codec")), None),
               "clips_with_codec": sum(bool(r.get("codec")) for r in rows),
               "clips_with_objects": sum(bool(r.get("objects")) for r in rows),
               "settings": {**asdict(settings), "analysis": settings.analysis.shaping()},
               "sources_digest": sources_digest(files)}
    if origin is not None:
        summary["imported_from"] = origin
    if settings.model == "stad" and rows:
        stats = music.FeatureStats()
        for r in rows:
            with np.load(Path(out_dir) / r["features"], allow_pickle=False) as z:
                stats.update({k: z[k] for k in music.STAD_KINDS})
        stats.save(Path(out_dir) / "stats.json")
    write_bytes_atomic(Path(out_dir) / "dataset.json", json.dumps(summary, indent=1).encode())
    return summary


def _shard_marker(out_dir: str, shard: tuple[int, int]) -> Path:
    return Path(out_dir) / "shards" / f"{shard[0]}-of-{shard[1]}"


def _all_shards_finished(out_dir: str, n: int) -> bool:
    """Whether every shard of ``n`` has left its marker. The folder is listed rather than each
    name looked up: on NFS a fresh listing is revalidated, a cached "no such file" may not be."""
    try:
        names = set(os.listdir(Path(out_dir) / "shards"))
    except FileNotFoundError:
        return False
    return all(f"{i}-of-{n}" in names for i in range(n))


def publish_manifest(out_dir: str, settings: PrepareSettings, shard: tuple[int, int]) -> dict:
    """The end of a shard's run: leave its marker, then rebuild the manifest until it was made
    from the sources as they still are, or some shard has not finished yet (that shard rebuilds
    after this one); returns the summary last written. Why this ends with a complete manifest
    whatever the order: docs/datasets.md, "Shards at work at once"."""
    write_bytes_atomic(_shard_marker(out_dir, shard), b"")
    while True:
        summary = write_manifest(out_dir, settings)
        if (summary["sources_digest"] == sources_digest(_source_files(out_dir))
                or not _all_shards_finished(out_dir, shard[1])):
            return summary


def run_prepare(inputs: list[str], out_dir: str, settings: PrepareSettings, *, workers: int = 1,
                shard: tuple[int, int] = (0, 1), progress: bool = True, clip_required: bool = False,
                codec_required: bool = False, objects_required: bool = False,
                warn=None) -> tuple[dict, list[tuple[str, str]]]:
    """Prepare every source of ``inputs`` (this shard's share) into ``out_dir``; returns the
    dataset summary and the failures. ``clip_required`` / ``codec_required`` /
    ``objects_required``: fail (WeightsUnavailable) when CLIP / the codec / SAM cannot be loaded
    instead of preparing without semantics / codec targets / objects. Each model is loaded once
    here (and once more in each worker process when ``workers`` > 1)."""
    from tqdm.auto import tqdm

    warn = warn or (lambda line: print(line, file=sys.stderr))
    check_output(out_dir, folder=True)  # a dataset that cannot be written fails before the work
    remove_stale_parts(out_dir, recursive=True)  # what killed runs left half-written
    sources, failed = _find_sources(inputs)
    if not sources and not failed:
        raise nothing_found(inputs, VIDEO_EXTENSIONS)
    embedder, note = load_embedder(settings.analysis, required=clip_required, warn=warn)
    codec = open_codec(settings, codec_required, warn)
    objects = open_objects(settings, embedder, objects_required, warn)
    _shard_marker(out_dir, shard).unlink(missing_ok=True)  # at work: an earlier run's marker no longer holds
    i, n = shard
    todo = []  # (video, content key, out_dir): each source is hashed once
    for video in sources[i::n]:
        try:
            key = content_key(video)
        except MediaError as e:  # not a regular file: refused before it is read
            failed.append((video, e.message))
            continue
        except OSError as e:
            failed.append((video, f"cannot be read ({e.strerror or e})"))
            continue
        if not _is_done(video, key, out_dir, settings, codec is not None, objects is not None):
            todo.append((video, key, out_dir))
    bar = tqdm(total=len(todo), unit="video", desc="prepare", disable=None if progress else True, file=sys.stderr)

    def record(result: tuple[str, str | None]) -> None:
        video, message = result
        if message:
            failed.append((video, message))
        bar.update(1)

    with_codec, with_objects = codec is not None, objects is not None
    if not runs_here(workers, len(todo)):
        embedder = codec = objects = None  # each worker loads its own copy
    _WORKER.update(settings=settings, embedder=embedder, note=note, codec=codec, objects=objects)
    try:
        run_jobs(todo, _run, record, workers=workers, initializer=_init_worker,
                 initargs=(settings, with_codec, threads_per_worker(min(workers, len(todo))), with_objects))
    finally:
        bar.close()
        _WORKER.clear()
    return publish_manifest(out_dir, settings, shard), failed
