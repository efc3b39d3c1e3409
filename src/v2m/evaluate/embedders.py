"""Learned embedders for the distribution metrics, behind one small interface, loaded lazily.

An embedder has a ``name``, the ``sample_rate`` it listens at, and ``embed(clips)`` -> [N, D]
for a list of mono float arrays at that rate. :func:`distribution_metrics` loads what it needs
only when it is asked for, and reports every metric it cannot compute with the reason.

Built: LAION-CLAP through transformers ``ClapModel`` (``laion/clap-htsat-unfused`` by default, a
hub id or a local folder; 48 kHz; the projected audio embedding, averaged over 10 s windows) for Frechet distance and density /
coverage (prdc, k = 5). Not built yet, so reported as not computed: VGGish (the "FAD" of V2M
papers), PANNs CNN14 (FD, KL, IS) and ImageBind (IB score): none of them is available through
transformers, and v2m does not ship its own implementations of them yet.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import V2MError, WeightsUnavailable
from . import metrics

CLAP_DEFAULT = "laion/clap-htsat-unfused"
NOT_BUILT = {
    "FAD (VGGish, 16 kHz, no PCA)": "VGGish is not built into v2m yet",
    "FD (PANNs CNN14)": "PANNs CNN14 is not built into v2m yet",
    "KL (PANNs CNN14)": "PANNs CNN14 is not built into v2m yet",
    "IS (PANNs CNN14)": "PANNs CNN14 is not built into v2m yet",
    "IB (ImageBind-huge)": "ImageBind is not built into v2m yet",
}


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


def _read(paths, sr: int) -> list[np.ndarray]:
    from ..media import read_audio

    return [read_audio(p, sr, channels=1)[0] for p in paths]


def distribution_metrics(generated, reference, videos, embedders: dict | None = None,
                         k: int = 5) -> tuple[dict, dict]:
    """Set-level metrics of the kept pairs: ``(values, reasons for those not computed)``.

    ``embedders``: ``{"clap": ClapEmbedder | source | None}``; None (the key missing) loads the
    default, a value of ``False`` skips it."""
    embedders = {} if embedders is None else dict(embedders)
    values, reasons = {}, dict(NOT_BUILT)
    clap = embedders.get("clap", CLAP_DEFAULT)
    names = ("FD (CLAP)", "density (CLAP, prdc k=5)", "coverage (CLAP, prdc k=5)")
    if clap is False:
        reasons.update({n: "skipped (--no-embedders)" for n in names})
    elif len(generated) <= k:
        reasons.update({n: f"needs more than {k} evaluated clips (got {len(generated)})" for n in names})
    else:
        try:
            model = clap if hasattr(clap, "embed") else ClapEmbedder(clap)
            g = model.embed(_read(generated, model.sample_rate))
            r = model.embed(_read(reference, model.sample_rate))
            source = getattr(model, "source", "clap")
            values[f"FD (CLAP {source}, {model.sample_rate} Hz)"] = round(metrics.frechet_distance(g, r), 4)
            scores = metrics.prdc(r, g, k=k)
            values[f"density (CLAP {source}, prdc k={k})"] = round(scores["density"], 4)
            values[f"coverage (CLAP {source}, prdc k={k})"] = round(scores["coverage"], 4)
        except (WeightsUnavailable, V2MError, ValueError) as e:
            reasons.update({n: str(e) for n in names})
    return values, reasons
