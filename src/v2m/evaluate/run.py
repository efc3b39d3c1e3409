"""`v2m evaluate`: generated music vs reference music vs the videos, in one report.

Files are paired by name: a generated file ``x.wav`` or ``x.mp4`` (or v2m's ``x_scored.mp4``)
goes with the reference ``x.*`` and the video ``x.*``. Audio files and muxed videos are both
accepted (the first audio stream is the music). Per pair, over the reference's length:

- rhythm against the reference music: Beat Coverage / Hit Scores in both published variants
  (``d2m-gan``, used by Diff-V2M, and ``loris``), on librosa onsets (22.05 kHz mono,
  ``onset_detect`` with backtracking off: D2M-GAN's recipe);
- rhythm against the video (when a video is given): mir_eval onset F-measure (70 ms) between
  the music's onsets and the video's cuts and visual beats, mir_eval beat F-measure between the
  music's beats and the visual beats, and the share of hard cuts with a beat within +/- 50 ms.

Distribution metrics need learned embedders (:mod:`v2m.evaluate.embedders`: VGGish FAD, PANNs
FD / KL / IS, CLAP FD / density / coverage, ImageBind IB); each one that is not available is
reported as not computed, with the reason, and the rest still runs.

Problems with single files (missing partner, unreadable, silent, lengths differing by more than
``max_length_diff`` seconds) are listed in the report and those pairs are left out; the others
are evaluated. The report (``report.json`` and ``report.md`` in the output folder, written
atomically) states the embedder, sample rate and variant next to every number.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import V2MError
from ..fsutil import check_output, nothing_found, write_bytes_atomic
from ..media import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, read_audio, read_comment
from . import metrics

ONSET_SR = 22050  # librosa's default rate, as D2M-GAN's beat scores use


@dataclass
class Report:
    clips: list[dict] = field(default_factory=list)
    aggregate: dict = field(default_factory=dict)
    not_computed: dict = field(default_factory=dict)  # metric -> reason
    problems: list[dict] = field(default_factory=list)  # {"name", "path", "problem"}
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"format": "v2m-evaluation", "version": 1, "settings": self.settings, "aggregate": self.aggregate,
                "not_computed": self.not_computed, "clips": self.clips, "problems": self.problems}


def _stem(path: Path) -> str:
    stem = path.stem
    return stem[: -len("_scored")] if stem.endswith("_scored") else stem


def _v2m_set(files: list[Path]) -> Path | None:
    """The WAV of a set that ``v2m generate`` wrote for one clip (``x.wav`` carrying v2m's mark,
    beside its muxed ``x.mp4``/``x.mkv``...), else None: then the files are genuinely different."""
    wavs = [p for p in files if p.suffix.lower() == ".wav"]
    others = [p for p in files if p.suffix.lower() != ".wav"]
    if len(wavs) == 1 and all(p.suffix.lower() in VIDEO_EXTENSIONS for p in others):
        if (read_comment(wavs[0]) or "").startswith("v2m"):
            return wavs[0]
    return None


def index_folder(folder: str | os.PathLike, what: str) -> dict[str, Path]:
    """Media files of ``folder`` (recursive) by pairing name. The files v2m wrote for one clip
    count once (its WAV); any other name seen twice is an error, and so is a folder without
    media files."""
    root = Path(folder)
    if not root.is_dir():
        raise V2MError(f"is not a folder ({what})", folder)
    extensions = set(AUDIO_EXTENSIONS) | set(VIDEO_EXTENSIONS)
    by_name: dict[str, list[Path]] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith("."):
            by_name.setdefault(_stem(p), []).append(p)
    if not by_name:
        raise nothing_found([str(folder)], extensions, what=f"{what} audio or video files")
    found: dict[str, Path] = {}
    for name, files in by_name.items():
        if len(files) == 1:
            found[name] = files[0]
        elif (wav := _v2m_set(files)) is not None:
            found[name] = wav
        else:
            raise V2MError(f"two {what} files pair as {name!r}: {files[0].name} and {files[1].name}", folder)
    return found


def music_onsets(y: np.ndarray, sr: int) -> np.ndarray:
    """Onset times (s) of mono audio, librosa's detector at 22.05 kHz."""
    import librosa

    if sr != ONSET_SR:
        y = librosa.resample(y, orig_sr=sr, target_sr=ONSET_SR)
    return librosa.onset.onset_detect(y=y.astype(np.float32), sr=ONSET_SR, units="time")


def _read_music(path: Path, sr: int) -> np.ndarray:

    audio = read_audio(path, sr, channels=1)[0]
    if audio.size == 0:
        raise V2MError("has no audio", path)
    if float(np.abs(audio).max()) < 1e-4:
        raise V2MError("is silent", path)
    return audio


def _round(x):
    if isinstance(x, float):
        return None if math.isnan(x) else round(x, 4)
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    return x


def evaluate_pair(generated: Path, reference: Path, video: Path | None, max_length_diff: float = 1.0,
                  analysis=None) -> dict:
    """Every per-clip metric of one pair (see the module docstring)."""
    from .. import music

    gen = _read_music(generated, ONSET_SR)
    ref = _read_music(reference, ONSET_SR)
    diff = abs(gen.size - ref.size) / ONSET_SR
    if diff > max_length_diff:
        raise V2MError(f"lengths differ by {diff:.2f} s ({gen.size / ONSET_SR:.2f} s generated, "
                       f"{ref.size / ONSET_SR:.2f} s reference; tolerance {max_length_diff:g} s)", generated)
    n = min(gen.size, ref.size)
    gen, ref = gen[:n], ref[:n]
    duration = n / ONSET_SR
    g_on, r_on = music_onsets(gen, ONSET_SR), music_onsets(ref, ONSET_SR)
    row = {"name": _stem(generated), "generated": str(generated), "reference": str(reference),
           "video": str(video) if video else None, "seconds": round(duration, 3),
           "bcs_bhs": {v: metrics.beat_scores(g_on, r_on, duration, v) for v in metrics.BEAT_SCORE_VARIANTS}}
    if video is not None:
        from ..analysis import AnalysisSettings, analyze_video

        a = analysis or analyze_video(str(video), AnalysisSettings(clip=None))
        cuts = np.asarray(a.cut_times, np.float64)
        visual = np.asarray(a.beat_times, np.float64)
        beats = music.beats(gen[None], ONSET_SR).times
        cuts, visual = cuts[cuts < duration], visual[visual < duration]
        row["video_rhythm"] = {
            "onset_f_cuts": metrics.event_f_measure(g_on, cuts)["f"] if len(cuts) else float("nan"),
            "onset_f_visual_beats": metrics.event_f_measure(g_on, visual)["f"] if len(visual) else float("nan"),
            "beat_f_visual_beats": metrics.beat_f_measure(beats, visual) if len(visual) else float("nan"),
            "cuts_on_beats": metrics.cuts_on_beats(cuts, beats),
            "cuts": int(len(cuts)), "visual_beats": int(len(visual))}
    return _round(row)


def _mean(values) -> float | None:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return round(float(np.mean(v)), 4) if v else None


def aggregate(clips: list[dict]) -> dict:
    """Means over the clips (values that could not be computed are left out of a mean)."""
    out: dict = {"clips": len(clips)}
    for v in metrics.BEAT_SCORE_VARIANTS:
        out[f"bcs ({v})"] = _mean(c["bcs_bhs"][v]["bcs"] for c in clips)
        out[f"bhs ({v})"] = _mean(c["bcs_bhs"][v]["bhs"] for c in clips)
    with_video = [c["video_rhythm"] for c in clips if c.get("video_rhythm")]
    for key in ("onset_f_cuts", "onset_f_visual_beats", "beat_f_visual_beats", "cuts_on_beats"):
        if with_video:
            out[key] = _mean(r[key] for r in with_video)
    return out


def run_evaluation(generated_dir: str, reference_dir: str, videos_dir: str | None, out_dir: str, *,
                   embedders: dict | None = None, max_length_diff: float = 1.0, panns_rate: int = 16000,
                   device: str = "cpu", progress: bool = True) -> Report:
    """Evaluate every pair and write ``report.json`` / ``report.md`` into ``out_dir``.

    ``embedders``: ``{"vggish" | "panns" | "clap" | "imagebind": source, object or False}``
    (:func:`v2m.evaluate.embedders.distribution_metrics`); a family left out loads its default."""
    from tqdm.auto import tqdm

    from .embedders import IS_SEED, IS_SPLITS, distribution_metrics

    check_output(out_dir, folder=True)  # a report that cannot be written fails before the work
    generated = index_folder(generated_dir, "generated")
    reference = index_folder(reference_dir, "reference")
    videos = index_folder(videos_dir, "video") if videos_dir else {}
    report = Report(settings={"onsets": f"librosa onset_detect, {ONSET_SR} Hz mono",
                              "beat_scores": "per-second bins; variants d2m-gan (BCS = G/R, BHS = H/R) and "
                                             "loris (BCS = H/G, BHS = H/R)",
                              "f_measure": "mir_eval, 70 ms window; beats untrimmed",
                              "cuts_on_beats": "+/- 50 ms", "max_length_diff_s": max_length_diff,
                              "FAD": "VGGish, 16 kHz (resampy kaiser_best), no PCA, no final ReLU, all 0.96 s "
                                     "examples pooled (audioldm_eval / frechet-audio-distance)",
                              "PANNs": f"CNN14 at {panns_rate} Hz as audioldm_eval runs it: FD on the 2048-d "
                                       "embedding, KL(reference || generated) on softmaxed logits per pair, "
                                       f"IS on softmaxed logits ({IS_SPLITS} splits when there are {IS_SPLITS} clips "
                                       f"or more, else 1; rows shuffled with seed {IS_SEED})",
                              "CLAP": "audio embedding, 48 kHz mono, mean over 10 s windows; prdc with the "
                                      "reference as the real set",
                              "IB": "ImageBind-huge, cosine of video and generated-audio embeddings "
                                    "(ImageBind's own clip sampling), mean over clips"})
    for name in sorted(set(reference) - set(generated)):
        report.problems.append({"name": name, "path": str(reference[name]), "problem": "no generated file"})
    pairs = []
    for name in sorted(generated):
        if name not in reference:
            report.problems.append({"name": name, "path": str(generated[name]), "problem": "no reference file"})
            continue
        if videos and name not in videos:
            report.problems.append({"name": name, "path": str(generated[name]),
                                    "problem": "no video (video metrics left out for it)"})
        pairs.append(name)
    kept = []
    for name in tqdm(pairs, desc="evaluate", unit="clip", disable=None if progress else True):
        try:
            report.clips.append(evaluate_pair(generated[name], reference[name], videos.get(name), max_length_diff))
            kept.append(name)
        except V2MError as e:
            report.problems.append({"name": name, "path": str(e.path or generated[name]), "problem": e.message})
    report.aggregate = aggregate(report.clips)
    learned = distribution_metrics(kept, [generated[n] for n in kept], [reference[n] for n in kept],
                                   [videos.get(n) for n in kept], embedders, panns_rate=panns_rate,
                                   device=device, progress=progress)
    report.aggregate.update(learned.values)
    report.not_computed.update(learned.reasons)
    report.settings["embedders"] = learned.sources
    for row in report.clips:
        row["learned"] = learned.per_clip.get(row["name"], {})
    out = Path(out_dir)
    write_bytes_atomic(out / "report.json", json.dumps(report.to_dict(), indent=1).encode())
    write_bytes_atomic(out / "report.md", markdown(report).encode())
    return report


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}" if isinstance(x, float) else str(x)


def markdown(report: Report) -> str:
    lines = ["# v2m evaluation", "", f"{report.aggregate.get('clips', 0)} clip(s) evaluated.", "",
             "## Aggregate (means over clips)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in report.aggregate.items() if k != "clips"]
    if report.not_computed:
        lines += ["", "## Not computed", ""] + [f"- **{k}**: {v}" for k, v in report.not_computed.items()]
    lines += ["", "## Per clip", "",
              "| clip | s | BCS (d2m-gan) | BHS (d2m-gan) | BCS (loris) | BHS (loris) | onset F cuts | "
              "onset F visual beats | beat F visual beats | cuts on beats |", "|---|---|---|---|---|---|---|---|---|---|"]
    learned = sorted({k for c in report.clips for k in c.get("learned", {})})
    if learned:
        lines[-2] = lines[-2][:-1] + "".join(f" {k} |" for k in learned)
        lines[-1] += "---|" * len(learned)
    for c in report.clips:
        d, lo, v = c["bcs_bhs"]["d2m-gan"], c["bcs_bhs"]["loris"], c.get("video_rhythm") or {}
        cells = [c["name"], c["seconds"], d["bcs"], d["bhs"], lo["bcs"], lo["bhs"], v.get("onset_f_cuts"),
                 v.get("onset_f_visual_beats"), v.get("beat_f_visual_beats"), v.get("cuts_on_beats")]
        cells += [c.get("learned", {}).get(k) for k in learned]
        lines.append("| " + " | ".join(_fmt(x) for x in cells) + " |")
    if report.problems:
        lines += ["", "## Problems (left out)", ""] + [f"- {p['path']}: {p['problem']}" for p in report.problems]
    lines += ["", "## Settings", ""] + [f"- {k}: {v}" for k, v in report.settings.items() if k != "embedders"]
    lines += [f"- weights of {k}: {v}" for k, v in report.settings.get("embedders", {}).items()]
    return "\n".join(lines) + "\n"
