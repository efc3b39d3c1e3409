"""Loading pretrained weights from a hub id or a local directory, with one clear error.

Every model v2m loads (CLIP now; the VAE, EnCodec and MusicGen later) goes through
:func:`load_pretrained`. A local directory is read as it is. A hub id is read from the local
cache, and from the hub only when the hub answers: an offline machine gets its answer at once
instead of a series of network retries.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

from .errors import WeightsUnavailable


def looks_like_path(source: str) -> bool:
    """A directory path rather than a hub id (``org/name``)."""
    return source.startswith((".", "/", "~")) or source.count("/") > 1


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub endpoint accepts a connection (False when offline mode is set)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout):
            return True
    except OSError:
        return False


def load_pretrained(cls, source: str, what: str, flag: str = "", **kwargs):
    """``cls.from_pretrained(source)``, or :class:`WeightsUnavailable` saying what to do.

    ``what`` names the model in messages ("CLIP"); ``flag`` is the option that turns it off."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor "Loading weights" bars: noise around v2m's own output
    source = os.path.expanduser(source)
    local = os.path.isdir(source)
    if not local and looks_like_path(source):
        raise WeightsUnavailable(f"no such directory for the {what} weights", source)
    online = not local and hub_reachable()
    try:
        return cls.from_pretrained(source, local_files_only=not online and not local, **kwargs)
    except (OSError, ValueError) as e:
        if local:
            where, hint = "this directory", "pass a directory made with save_pretrained"
        elif online:
            where, hint = "the hub", "check the id, and for a gated model accept its terms and log in (`hf auth login`)"
        else:
            where = "the local cache (the hub is not reachable)"
            hint = f"download it once where there is network (`hf download {source}`) or pass a local directory"
        reason = " ".join(str(e).split())[:160]
        off = f", or use {flag}" if flag else ""
        raise WeightsUnavailable(f"{what} weights could not be loaded from {where}: {hint}{off} ({reason})",
                                 source) from None


def hub_file(repo_id: str, filename: str, what: str, flag: str = "") -> str:
    """The local path of ``filename`` from the hub repository ``repo_id`` (from the cache when
    the hub cannot be reached), or :class:`WeightsUnavailable` saying what to do."""
    from huggingface_hub import hf_hub_download

    online = hub_reachable()
    try:
        return hf_hub_download(repo_id, filename, local_files_only=not online)
    except Exception as e:  # huggingface_hub raises several error types for one cause
        where = "the hub" if online else "the local cache (the hub is not reachable)"
        hint = ("check the id and your access (`hf auth login`)" if online else
                f"download it once where there is network (`hf download {repo_id} {filename}`) or pass a local path")
        off = f", or use {flag}" if flag else ""
        reason = " ".join(str(e).split())[:160]
        raise WeightsUnavailable(f"{what} ({filename}) could not be loaded from {where}: {hint}{off} ({reason})",
                                 repo_id) from None
