"""Learned embedders for the distribution metrics, behind one small interface, loaded lazily.

Each embedder is loaded only when its metrics are asked for, from a hub id, a local folder or
file, or (for the single-file checkpoints) the authors' URL, downloaded once into torch's cache.
Every metric that cannot be computed (weights missing, too few clips, no videos) is reported with
the reason; the rest still runs. The protocols follow Diff-V2M's table (../design/evaluation.md):

- FAD: VGGish at 16 kHz, no PCA, all 0.96 s examples pooled (:mod:`v2m.evaluate.vggish`);
- FD, KL, IS: PANNs CNN14 (16 kHz by default, or 32 kHz) as audioldm_eval runs it
  (:mod:`v2m.evaluate.panns`);
- FD, density and coverage (prdc, k = 5): LAION-CLAP through transformers ``ClapModel``
  (``laion/clap-htsat-unfused`` by default; 48 kHz; the projected audio embedding, averaged over
  10 s windows);
- IB: ImageBind-huge, the cosine between the video's and the generated audio's embeddings, per
  clip and averaged (:mod:`v2m.evaluate.imagebind`).

An embedder is given as an object with the methods used below (tests inject tiny ones), a source
string, ``None`` for the default source, or ``False`` to skip it.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import V2MError, WeightsUnavailable
from . import metrics, readers

CLAP_DEFAULT = "laion/clap-htsat-unfused"
FAMILIES = ("vggish", "panns", "clap", "imagebind")
IS_SPLITS, IS_SEED = 10, 2020  # audioldm_eval's Inception score settings


def metric_names(panns_rate: int = 16000, k: int = 5) -> dict[str, tuple[str, ...]]:
    """The report's name of every distribution metric, by embedder: embedder, rate and variant in each."""
    khz = f"{panns_rate // 1000} kHz"
    return {"vggish": ("FAD (VGGish, 16 kHz, no PCA)",),
            "panns": (f"FD (PANNs CNN14, {khz})", f"KL (PANNs CNN14, {khz}, softmax)", f"IS (PANNs CNN14, {khz})"),
            "clap": ("FD (CLAP, 48 kHz)", f"density (CLAP, prdc k={k})", f"coverage (CLAP, prdc k={k})"),
            "imagebind": ("IB (ImageBind-huge, video-audio cosine)",)}


class ClapEmbedder:
    """LAION-CLAP audio embeddings (transformers ``ClapModel``)."""

    name = "clap"

    def __init__(self, source: str = CLAP_DEFAULT, device: str = "cpu", batch_size: int = 8):
        import torch
        from transformers import ClapFeatureExtractor, ClapModel

        from ..weights import hub_reachable, load_pretrained

        self.source, self.device, self.batch_size = source, device, batch_size
        self.model = load_pretrained(ClapModel, source, "CLAP").to(device).eval()
        try:
            local = os.path.isdir(os.path.expanduser(source)) or not hub_reachable()
            self.features = ClapFeatureExtractor.from_pretrained(source, local_files_only=local)
        except OSError:  # a folder with the model only: CLAP's published feature settings
            fusion = bool(self.model.config.audio_config.enable_fusion)
            self.features = ClapFeatureExtractor(feature_size=self.model.config.audio_config.num_mel_bins,
                                                 truncation="fusion" if fusion else "rand_trunc")
        self.sample_rate = int(self.features.sampling_rate)
        self.window = int(self.features.max_length_s * self.sample_rate)
        self._torch = torch

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        """One embedding per clip: the mean over its consecutive windows of CLAP's input length
        (10 s; no random crop, so the result is deterministic and covers the whole clip)."""
        torch = self._torch
        windows, owner = [], []
        for i, clip in enumerate(clips):
            clip = np.asarray(clip, np.float32)
            for a in range(0, max(len(clip), 1), self.window):
                windows.append(clip[a : a + self.window])
                owner.append(i)
        out = []
        for i in range(0, len(windows), self.batch_size):
            inputs = self.features(windows[i : i + self.batch_size], sampling_rate=self.sample_rate,
                                   return_tensors="pt")
            inputs = {k: v.to(self.device) for k, v in inputs.items()}
            with torch.inference_mode():
                emb = self.model.get_audio_features(**inputs)
            emb = getattr(emb, "pooler_output", emb)  # transformers 5 returns an output object
            out.append(emb.float().cpu().numpy())
        emb, owner = np.concatenate(out), np.array(owner)
        return np.stack([emb[owner == i].mean(0) for i in range(len(clips))])


def _free_memory() -> None:
    """Give back a finished embedder's memory before the next one loads (ImageBind-huge is 4.5 GB)."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


@dataclass
class DistributionResult:
    values: dict = field(default_factory=dict)  # metric -> value over the set
    reasons: dict = field(default_factory=dict)  # metric -> why it was not computed
    per_clip: dict = field(default_factory=dict)  # clip name -> {metric: value} (KL, IB)
    sources: dict = field(default_factory=dict)  # embedder -> where its weights came from


def _softmax(logits: np.ndarray) -> np.ndarray:
    from scipy.special import softmax

    return softmax(np.asarray(logits, np.float64), axis=1)


def distribution_metrics(names: list[str], generated: list, reference: list, videos: list | None = None,
                         embedders: dict | None = None, *, k: int = 5, panns_rate: int = 16000,
                         device: str = "cpu", progress: bool = False) -> DistributionResult:
    """Set-level metrics of the kept pairs ``names`` (generated[i] vs reference[i], videos[i] or None)."""
    from tqdm.auto import tqdm

    embedders = {} if embedders is None else dict(embedders)
    videos = list(videos) if videos is not None else [None] * len(names)
    names_by = metric_names(panns_rate, k)
    out = DistributionResult()

    def read(paths, reader, what):
        return [reader(p) for p in tqdm(paths, desc=what, unit="file", leave=False, disable=None if progress else True)]

    def vggish(spec):
        from .vggish import VGGISH_DEFAULT, VggishEmbedder

        model = spec if hasattr(spec, "frames") else VggishEmbedder(spec or VGGISH_DEFAULT, device)
        out.sources["vggish"] = getattr(model, "source", "custom")
        g = np.concatenate(model.frames(read(generated, readers.for_vggish, "VGGish: generated")))
        r = np.concatenate(model.frames(read(reference, readers.for_vggish, "VGGish: reference")))
        if len(g) < 2 or len(r) < 2:
            raise ValueError("needs at least 2 VGGish examples (0.96 s each) in each set")
        out.values[names_by["vggish"][0]] = round(metrics.frechet_distance(g, r), 4)

    def panns(spec):
        from .panns import PannsEmbedder

        model = spec if hasattr(spec, "run") else PannsEmbedder(spec, panns_rate, device)
        out.sources["panns"] = getattr(model, "source", "custom")
        rate = model.sample_rate
        ge, gl = model.run(read(generated, lambda p: readers.for_panns(p, rate), "PANNs: generated"))
        re, rl = model.run(read(reference, lambda p: readers.for_panns(p, rate), "PANNs: reference"))
        fd, kl, is_ = names_by["panns"]
        gp, rp = _softmax(gl), _softmax(rl)
        per = [metrics.kl_divergence(gp[i : i + 1], rp[i : i + 1]) for i in range(len(names))]
        for name, value in zip(names, per):
            out.per_clip.setdefault(name, {})[kl] = round(value, 4)
        out.values[kl] = round(float(np.mean(per)), 4)
        splits = IS_SPLITS if len(names) >= IS_SPLITS else 1
        score = metrics.inception_score(gp, splits=splits, seed=IS_SEED)
        out.values[is_] = round(score["mean"], 4)
        out.values[is_ + " std"] = round(score["std"], 4)
        out.values[is_ + " splits"] = splits
        if len(names) < 2:
            out.reasons[fd] = f"needs at least 2 evaluated clips (got {len(names)})"
        else:
            out.values[fd] = round(metrics.frechet_distance(ge, re), 4)

    def clap(spec):
        if len(names) <= k:
            raise ValueError(f"needs more than {k} evaluated clips (got {len(names)})")
        model = spec if hasattr(spec, "embed") else ClapEmbedder(spec or CLAP_DEFAULT, device)
        out.sources["clap"] = getattr(model, "source", "custom")
        sr = model.sample_rate
        g = model.embed(read(generated, lambda p: readers.for_clap(p, sr), "CLAP: generated"))
        r = model.embed(read(reference, lambda p: readers.for_clap(p, sr), "CLAP: reference"))
        fd, den, cov = names_by["clap"]
        scores = metrics.prdc(r, g, k=k)
        out.values[fd] = round(metrics.frechet_distance(g, r), 4)
        out.values[den] = round(scores["density"], 4)
        out.values[cov] = round(scores["coverage"], 4)

    def imagebind(spec):
        have = [i for i, v in enumerate(videos) if v is not None]
        if not have:
            raise ValueError("needs the videos (--videos)")
        from .imagebind import IMAGEBIND_DEFAULT, ImageBindEmbedder, ib_scores

        model = spec if hasattr(spec, "embed_video") else ImageBindEmbedder(spec or IMAGEBIND_DEFAULT, device)
        out.sources["imagebind"] = getattr(model, "source", "custom")
        a = model.embed_audio(read([generated[i] for i in have], readers.for_imagebind, "ImageBind: audio"))
        v = model.embed_video([str(videos[i]) for i in have])
        (ib,) = names_by["imagebind"]
        scores = ib_scores(v, a)
        for i, value in zip(have, scores):
            out.per_clip.setdefault(names[i], {})[ib] = round(float(value), 4)
        out.values[ib] = round(float(np.mean(scores)), 4)

    for family, compute in (("vggish", vggish), ("panns", panns), ("clap", clap), ("imagebind", imagebind)):
        spec = embedders.get(family)
        if spec is False:
            out.reasons.update({n: "skipped (--no-embedders or off)" for n in names_by[family]})
            continue
        if not names:
            out.reasons.update({n: "no clip could be evaluated" for n in names_by[family]})
            continue
        try:
            compute(spec)  # its model is dropped when it returns
        except (WeightsUnavailable, V2MError, ValueError) as e:
            out.reasons.update({n: str(e) for n in names_by[family] if n not in out.values})
        _free_memory()
    return out
