"""Shared fixtures: videos with known events, written by PyAV in a session temp folder."""

from __future__ import annotations

import os
import tempfile

import pytest

# Tests never touch a model hub: an empty cache and offline mode make any attempt fail at once.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="v2m-test-hf-")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from v2m.synthetic import write_video  # noqa: E402

FPS = 25.0
CUTS = [2.0, 4.2]
PULSES = [1.0, 3.0, 5.4]


@pytest.fixture(scope="session")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return folder


@pytest.fixture(scope="session")
def events_video(videos):
    """6 s, 25 fps, 160x96: hard cuts at 2.0 and 4.2 s, motion pulses at 1.0, 3.0, 5.4 s, audio."""
    return write_video(videos / "events.mp4", duration=6.0, fps=FPS, size=(160, 96),
                       cut_times=CUTS, pulse_times=PULSES, audio=True)


@pytest.fixture(scope="session")
def vfr_video(videos):
    """Variable frame rate: 40 ms frames, then 20 ms frames, then 66 ms frames; a cut at 2.5 s."""
    import numpy as np

    times = np.concatenate([np.arange(0, 1.0, 0.04), np.arange(1.0, 2.0, 0.02), np.arange(2.0, 4.0, 0.066)])
    cut = float(times[np.searchsorted(times, 2.5)])
    v = write_video(videos / "vfr.mp4", frame_times=times, size=(128, 96), cut_times=[cut], pulse_times=[])
    return v
