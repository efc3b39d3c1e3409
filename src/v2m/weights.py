"""Loading pretrained weights from a hub id or a local directory, with one clear error.

Every model v2m loads (CLIP now; the VAE, EnCodec and MusicGen later) goes through
:func:`load_pretrained`. A local directory is read as it is. A hub id is read from the local
cache, and from the hub only when the hub answers: an offline machine gets its answer at once
instead of a series of network retries.
"""

from __future__ import annotations

import functools
import json
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from .errors import WeightsUnavailable


def resolve_device(name: str = "auto"):
    """The torch device called ``name``: ``auto`` is ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def looks_like_path(source: str) -> bool:
    """A directory path rather than a hub id (``org/name``)."""
    return source.startswith((".", "/", "~")) or source.count("/") > 1


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether the server of ``url`` accepts a connection."""
    parts = urlparse(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)), timeout):
            return True
    except OSError:
        return False


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub endpoint accepts a connection (False when offline mode is set)."""
    from huggingface_hub import constants

    return not constants.HF_HUB_OFFLINE and _reachable(constants.ENDPOINT, timeout)


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def _weights_file(directory: str, subfolder: str = "") -> str:
    """The one weights file of a ``save_pretrained`` directory (to name it in an error), else the directory."""
    folder = os.path.join(directory, subfolder)
    try:
        found = [name for name in sorted(os.listdir(folder)) if name.endswith(_WEIGHT_SUFFIXES)]
    except OSError:
        return directory
    return os.path.join(folder, found[0]) if len(found) == 1 else folder


def load_pretrained(cls, source: str, what: str, flag: str = "", **kwargs):
    """``cls.from_pretrained(source)``, or :class:`WeightsUnavailable` saying what to do.

    ``what`` names the model in messages ("CLIP"); ``flag`` is the option that turns it off.
    A directory whose files cannot be used gets one line naming the file: a config that is not
    JSON, a truncated or corrupt safetensors file, a torch file that would need code run to
    unpickle (transformers and diffusers refuse those; v2m never unpickles code)."""
    import pickle

    from safetensors import SafetensorError
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor "Loading weights" bars: noise around v2m's own output
    source = os.path.expanduser(source)
    local = os.path.isdir(source)
    if not local and looks_like_path(source):
        raise WeightsUnavailable(f"no such directory for the {what} weights", source)
    online = not local and hub_reachable()
    off = f", or use {flag}" if flag else ""
    try:
        return cls.from_pretrained(source, local_files_only=not online and not local, **kwargs)
    except (OSError, ValueError, pickle.UnpicklingError, SafetensorError) as e:
        cause = e
        while cause is not None and not isinstance(cause, (pickle.UnpicklingError, SafetensorError)):
            cause = cause.__cause__ or cause.__context__  # diffusers wraps the reader's error in an OSError
        weights_file = _weights_file(source, kwargs.get("subfolder", "")) if local else source
        if isinstance(cause, pickle.UnpicklingError):
            raise WeightsUnavailable(f"the {what} weights are a pickle that would run code when loaded, which v2m "
                                     f"refuses: save the model with save_pretrained (safetensors){off}",
                                     weights_file) from None
        if isinstance(cause, SafetensorError):
            raise WeightsUnavailable(f"the {what} weights are not a readable safetensors file, truncated or corrupt "
                                     f"({' '.join(str(cause).split())[:120]}): save or download them again{off}",
                                     weights_file) from None
        config = os.path.join(source, kwargs.get("subfolder", ""), "config.json")
        if local and os.path.isfile(config):
            try:
                json.loads(Path(config).read_bytes())
            except ValueError as bad:  # not JSON: name the file rather than the folder
                raise WeightsUnavailable(f"the {what} config is not JSON ({' '.join(str(bad).split())[:120]})",
                                         config) from None
        if local:
            where, hint = "this directory", "pass a directory made with save_pretrained"
        elif online:
            where, hint = "the hub", "check the id, and for a gated model accept its terms and log in (`hf auth login`)"
        else:
            where = "the local cache (the hub is not reachable)"
            hint = f"download it once where there is network (`hf download {source}`) or pass a local directory"
        reason = " ".join(str(e).split())[:160]
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


def checkpoint_file(source: str, filename: str, what: str, flag: str = "", converted: str | None = None) -> str:
    """The local path of a single-file checkpoint, or :class:`WeightsUnavailable` saying what to do.

    For models published as one file outside the Hugging Face hub (VGGish, PANNs, ImageBind),
    ``source`` may be a file, a directory holding ``filename`` (or, in its place, the safetensors
    file named ``converted``), an http(s) URL (downloaded once
    into torch's hub cache, ``$TORCH_HOME/hub/checkpoints``, and read from there afterwards; never
    fetched when ``HF_HUB_OFFLINE=1``), or a hub id ``org/name`` whose repository holds ``filename``."""
    off = f", or use {flag}" if flag else ""
    source = os.path.expanduser(source)
    if os.path.isfile(source):
        return source
    if os.path.isdir(source):
        path = os.path.join(source, filename)
        if converted and not os.path.isfile(path) and os.path.isfile(os.path.join(source, converted)):
            path = os.path.join(source, converted)
        if not os.path.isfile(path):
            raise WeightsUnavailable(f"no {filename} in this directory for the {what} weights{off}", source)
        return path
    if source.startswith(("http://", "https://")):
        import torch.hub

        name = os.path.basename(urlparse(source).path).replace("%3D", "=")
        cached = os.path.join(torch.hub.get_dir(), "checkpoints", name)
        if os.path.isfile(cached):
            return cached
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE or not _reachable(source):
            raise WeightsUnavailable(f"{what} weights are not cached and their server cannot be reached: fetch this "
                                     f"URL once where there is network (it is then kept in {os.path.dirname(cached)}) "
                                     f"or pass the downloaded file{off}", source)
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        try:
            torch.hub.download_url_to_file(source, cached, progress=True)  # writes a temp file, then renames
        except Exception as e:  # urllib raises several error types for one cause
            raise WeightsUnavailable(f"{what} weights could not be downloaded ({' '.join(str(e).split())[:160]}){off}",
                                     source) from None
        return cached
    if looks_like_path(source) or source.count("/") != 1:
        raise WeightsUnavailable(f"no such file or directory for the {what} weights{off}", source)
    return hub_file(source, filename, what, flag)


def read_state_dict(path: str, what: str) -> dict:
    """The tensors of a checkpoint file: safetensors, or a torch file read with ``weights_only=True``
    (never unpickling code). A ``{"model": ...}`` or ``{"state_dict": ...}`` wrapper is opened."""
    import torch

    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt file, or one that needs unpickling of code
        raise WeightsUnavailable(f"the {what} checkpoint cannot be read ({' '.join(str(e).split())[:160]})", path) from None
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsUnavailable(f"the {what} checkpoint is not a dictionary of tensors", path)
    return state


def load_matching(module, state: dict, what: str, path: str | None = None, ignore: tuple[str, ...] = ()) -> None:
    """Load ``state`` into ``module`` strictly, except keys starting with one of ``ignore`` (parts of
    a published checkpoint v2m does not use); a missing, unexpected or misshapen tensor is one
    clear error naming ``what`` and ``path``, the file the weights came from. A module built on
    the meta device takes the tensors as they are (``assign``)."""
    state = {k: v for k, v in state.items() if not k.startswith(ignore)}
    own = module.state_dict()
    missing = sorted(k for k in set(own) - set(state) if not k.endswith("num_batches_tracked"))  # a counter
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = [(kind, keys) for kind, keys in (("missing", missing), ("unexpected", unexpected),
                                                 ("misshapen", wrong)) if keys]
    if problems:
        examples = "; ".join(f"{kind} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                             for kind, keys in problems)
        counts = ", ".join(f"{len(keys)} {kind}" for kind, keys in problems)
        raise WeightsUnavailable(f"the {what} checkpoint does not fit the model: {examples} ({counts})", path)
    module.load_state_dict(state, strict=False, assign=any(p.is_meta for p in module.parameters()))
