"""Media I/O for all of v2m, through PyAV (FFmpeg in-process; no subprocesses).

Reading a video goes through :class:`VideoReader`: it opens the file once, checks that it is a
usable video (turning every FFmpeg failure into one :class:`~v2m.errors.MediaError` line that
names the file), probes it, and then streams decoded frames with FFmpeg's threads on. Frames are
never collected: callers reduce each frame as it arrives.

Times are taken from presentation timestamps, so variable-frame-rate videos are timed exactly;
``t = 0`` is the first video frame.

Only regular files are opened (a named pipe would block forever). Writing a scored video
(:func:`mux_music`) copies the video stream packet for packet into a container checked
beforehand to hold it (:func:`check_mux`), and checks the written file before it is kept.
"""

from __future__ import annotations

import io
import itertools
import os
import queue
import stat
import threading
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Iterable, Iterator

import av
import cv2
import numpy as np

from .errors import MediaError
from .fsutil import atomic_path

# The file endings v2m takes as videos and as audio when it searches folders.
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".wmv", ".flv", ".3gp", ".ogv", ".mxf",
})  # fmt: skip
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".aac")

# Demuxers that read single pictures rather than videos.
_IMAGE_DEMUXERS = ("image2", "_pipe")


@dataclass(frozen=True)
class VideoInfo:
    """What a probe tells about a video file. Sizes are the coded size; ``display_size`` applies
    the rotation a player would apply."""

    path: str
    size_bytes: int
    container: str
    duration: float  # seconds, from the container (the decode may find the exact end)
    fps: float  # average frame rate
    frame_count: int | None  # from the container when it says; None when unknown
    width: int
    height: int
    rotation: int  # degrees counter-clockwise a player rotates the picture by (0, 90, 180, 270)
    codec: str
    pix_fmt: str | None
    start_time: float  # time of the first video frame on the container's clock
    has_audio: bool
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    audio_channels: int | None = None

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown to a viewer."""
        if self.rotation % 180 == 90:
            return self.height, self.width
        return self.width, self.height

    def to_dict(self) -> dict:
        return asdict(self)


_NOT_REGULAR = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def not_regular_file(mode: int) -> str | None:
    """The problem line for a path whose ``os.stat`` mode is not a regular file, else None.

    Only regular files are read: opening or reading a named pipe or a device can block forever
    (a pipe waits for a writer), so anything else is refused before it is opened."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a video file"
    kind = next((name for test, name in _NOT_REGULAR if test(mode)), "a special file")
    return f"is {kind}, not a regular file"


def _check_path(path: str) -> None:
    """One line for a path that is not a readable, non-empty regular file; nothing is opened
    before ``os.stat`` has shown that it is a regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise MediaError("file not found", path) from None
    except OSError as e:
        raise MediaError(f"cannot be read ({e.strerror or e})", path) from None
    if problem := not_regular_file(st.st_mode):
        raise MediaError(problem, path)
    try:
        with open(path, "rb") as f:
            f.read(1)
    except PermissionError:
        raise MediaError("permission denied (the file is not readable)", path) from None
    except OSError as e:
        raise MediaError(f"cannot be read ({e.strerror or e})", path) from None
    if st.st_size == 0:
        raise MediaError("empty file (0 bytes)", path)


def _ffmpeg_reason(err: Exception) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return " ".join(str(text).split())


def _open_video(path: str):
    """``(container, its first video stream)`` for a usable video file, else one MediaError line.
    The caller closes the container."""
    _check_path(path)
    try:
        container = av.open(path, metadata_errors="ignore")
    except PermissionError:
        raise MediaError("permission denied (the file is not readable)", path) from None
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise MediaError(
            f"not a readable media file; truncated or corrupt? (FFmpeg: {_ffmpeg_reason(e)})", path
        ) from None
    try:
        fmt = container.format.name or ""
        if not container.streams.video:
            kind = "audio only" if container.streams.audio else "no streams FFmpeg can use"
            raise MediaError(f"has no video stream ({kind})", path)
        if fmt == _IMAGE_DEMUXERS[0] or fmt.endswith(_IMAGE_DEMUXERS[1]):
            raise MediaError(f"is a still image ({fmt}), not a video", path)
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None:  # FFmpeg could not tell the codec (e.g. a damaged sample description)
            raise MediaError("video stream with an unknown or unsupported codec (damaged file header?)", path)
        if not ctx.width or not ctx.height:
            raise MediaError(f"invalid frame size {ctx.width}x{ctx.height}", path)
    except BaseException:
        container.close()
        raise
    return container, stream


class VideoReader:
    """One open video: its :attr:`info`, then its decoded frames, in presentation order.

    Use as a context manager. ``threads`` is FFmpeg's decoding thread count (0 = automatic).
    """

    def __init__(self, path: str | os.PathLike, threads: int = 0):
        self.path = os.fspath(path)
        self._container, self._stream = _open_video(self.path)
        try:
            ctx = self._stream.codec_context
            self._stream.thread_type = "AUTO"
            ctx.thread_count = threads
            self._first = None
            self._frames = self._container.decode(self._stream)
            self._first = self._next_frame(self._frames, at=0.0)
            if self._first is None:
                raise MediaError("no decodable video frame (truncated or corrupt?)", self.path)
            self.info = self._probe(self._first)
        except BaseException:
            self._container.close()
            raise

    def _next_frame(self, frames, at: float):
        try:
            return next(frames, None)
        except av.error.FFmpegError as e:
            raise MediaError(
                f"corrupt or truncated video data near {at:.2f} s (FFmpeg: {_ffmpeg_reason(e)})",
                self.path,
            ) from None

    def _probe(self, first: av.VideoFrame) -> VideoInfo:
        c, s = self._container, self._stream
        rate = s.average_rate or s.guessed_rate or s.base_rate
        fps = float(rate) if rate else 0.0
        if s.duration is not None and s.time_base is not None:
            duration = float(s.duration * s.time_base)
        elif c.duration is not None:
            duration = c.duration / av.time_base
        else:
            duration = 0.0
        audio = c.streams.audio[0] if c.streams.audio else None
        actx = audio.codec_context if audio is not None else None
        return VideoInfo(
            path=self.path,
            size_bytes=os.path.getsize(self.path),
            container=c.format.name,
            duration=duration,
            fps=fps,
            frame_count=int(s.frames) if s.frames else None,
            width=s.codec_context.width,
            height=s.codec_context.height,
            rotation=int(first.rotation or 0) % 360,
            codec=_codec_name(s),
            pix_fmt=s.codec_context.pix_fmt,
            start_time=float(first.time) if first.time is not None else 0.0,
            has_audio=audio is not None,
            audio_codec=_codec_name(audio) if actx is not None else None,
            audio_sample_rate=actx.sample_rate if actx is not None else None,
            audio_channels=actx.channels if actx is not None else None,
        )

    @property
    def time_base(self) -> Fraction:
        return Fraction(self._stream.time_base)

    def frames(self) -> Iterator[tuple[float, av.VideoFrame]]:
        """Yield ``(t, frame)`` for every frame, ``t`` in seconds from the first frame.

        Frames without a timestamp get one from the average frame rate. Decoding errors
        become :class:`MediaError` with the time where the data broke off.
        """
        origin = self.info.start_time
        step = 1.0 / self.info.fps if self.info.fps > 0 else 1.0 / 25.0
        frame, index, last_t = self._first, 0, -step
        self._first = None
        while frame is not None:
            t = (float(frame.time) - origin) if frame.time is not None else last_t + step
            yield t, frame
            last_t, index = t, index + 1
            frame = self._next_frame(self._frames, at=max(last_t, 0.0))

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def probe(path: str | os.PathLike) -> VideoInfo:
    """Open ``path``, check that it is a usable video and return what it is."""
    with VideoReader(path) as reader:
        return reader.info


# 8-bit formats with one plane each for luma and the two chroma channels, and those whose first
# plane at least is the luma at full size.
_PLANAR_YUV = ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p")
_LUMA_FIRST = _PLANAR_YUV + ("nv12", "nv21", "gray")


def _plane(frame: av.VideoFrame, index: int) -> np.ndarray:
    p = frame.planes[index]
    return np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width]


def shrink(image: np.ndarray, w: int, h: int) -> np.ndarray:
    """``image`` reduced to ``w x h``, anti-aliased: halved by 2x2 averaging while it is at
    least twice the target on both sides, then bilinear for the rest (a factor under 2).
    Exact halving is OpenCV's fastest reduction, and reading the full-size plane once is
    most of the cost. An odd last row or column is dropped before halving: OpenCV halves only
    even sides exactly (an odd one takes its general path, 15 times slower)."""
    while image.shape[1] >= 2 * w and image.shape[0] >= 2 * h:
        half_w, half_h = image.shape[1] // 2, image.shape[0] // 2
        image = cv2.resize(image[: 2 * half_h, : 2 * half_w], (half_w, half_h), interpolation=cv2.INTER_AREA)
    if (image.shape[1], image.shape[0]) == (w, h):
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)


def reduce_frame(frame: av.VideoFrame, w: int, h: int) -> np.ndarray:
    """A decoded frame's luma reduced to ``w x h``, uint8.

    8-bit planar frames (nearly all H.264/HEVC/VP9/AV1 video) are reduced from their luma plane
    with OpenCV, several times faster than FFmpeg's scaler; other pixel formats (10-bit, RGB)
    are converted to grey by FFmpeg first. Meant for analysis (cuts, differences), not display."""
    if frame.format.name in _LUMA_FIRST:
        return shrink(_plane(frame, 0), w, h)
    return shrink(frame.reformat(2 * w, 2 * h, "gray", interpolation="FAST_BILINEAR").to_ndarray(), w, h)


def reduce_frame_bgr(frame: av.VideoFrame, w: int, h: int, luma: np.ndarray | None = None) -> np.ndarray:
    """A decoded frame reduced to ``w x h`` (both even) in BGR, uint8, for analysis.

    ``luma`` is the frame's luma at that size when the caller has it already (it saves reading
    the full-size plane again). Planar 8-bit frames are reduced plane by plane and converted
    at the small size (OpenCV's BT.601 conversion); other formats go through FFmpeg's scaler."""
    if frame.format.name not in _PLANAR_YUV:
        frame = frame.reformat(2 * w, 2 * h, "yuv420p", interpolation="FAST_BILINEAR")
        luma = None
    y = shrink(_plane(frame, 0), w, h) if luma is None else luma
    u = shrink(_plane(frame, 1), w // 2, h // 2)
    v = shrink(_plane(frame, 2), w // 2, h // 2)
    i420 = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(h * 3 // 2, w)
    return cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)


def reduced_frames(
    reader: VideoReader, w: int, h: int, prefetch: int = 8
) -> Iterator[tuple[float, av.VideoFrame, np.ndarray]]:
    """Yield ``(t, frame, luma)`` for every frame of ``reader``, the luma reduced to ``w x h``.

    Decoding runs in a background thread (PyAV releases the GIL while FFmpeg works), so it
    overlaps with the reduction and with whatever the caller does with each frame; at most
    ``prefetch`` decoded frames wait in between. The reduction runs on the caller's thread: the
    decoding thread is given nothing else to do (reducing there was measured slower, at 720p and
    1080p alike). Errors of the decoding thread are raised here; stopping early stops it."""
    items: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for t, frame in reader.frames():
                if not put((t, frame)):
                    return
            put(done)
        except BaseException as e:  # handed to the consumer
            put(e)

    worker = threading.Thread(target=produce, name="v2m-decode", daemon=True)
    worker.start()
    try:
        while (item := items.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            t, frame = item
            yield t, frame, reduce_frame(frame, w, h)
    finally:
        stop.set()
        worker.join()


# --- audio -------------------------------------------------------------------------------


def _audio_stream(container, index: int, path: str):
    """Audio stream ``index`` of an open container, or one MediaError line."""
    if len(container.streams.audio) <= index:
        raise MediaError("has no audio stream", path)
    stream = container.streams.audio[index]
    if stream.codec_context is None:
        raise MediaError("audio stream with an unknown or unsupported codec (damaged file header?)", path)
    return stream


def audio_sample_rate(path: str | os.PathLike, stream: int = 0) -> int:
    """The sample rate an audio stream of any container was stored at."""
    path = os.fspath(path)
    _check_path(path)
    try:
        with av.open(path, metadata_errors="ignore") as c:
            rate = _audio_stream(c, stream, path).codec_context.sample_rate
    except av.error.FFmpegError as e:
        raise MediaError(f"audio cannot be read (FFmpeg: {_ffmpeg_reason(e)})", path) from None
    if not rate:
        raise MediaError("the audio stream has no sample rate", path)
    return int(rate)


def read_comment(path: str | os.PathLike) -> str | None:
    """The ``comment`` metadata of a media file (None when it has none or cannot be read)."""
    try:
        with av.open(os.fspath(path), metadata_errors="ignore") as c:
            return next((v for k, v in c.metadata.items() if k.lower() == "comment"), None)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return None


def audio_blocks(path: str | os.PathLike, sample_rate: int, channels: int = 2, stream: int = 0,
                 size: int = 441_000) -> Iterator[np.ndarray]:
    """Decode an audio stream of any container to consecutive float32 blocks ``[channels, size]``
    at ``sample_rate`` (the last one shorter), decoding as it goes: an hour of soundtrack is never
    held. A file that cannot be decoded is one MediaError line (raised when iterated)."""
    path = os.fspath(path)
    _check_path(path)
    layout = {1: "mono", 2: "stereo"}[channels]
    pending: list[np.ndarray] = []
    held = 0
    try:
        with av.open(path, metadata_errors="ignore") as c:
            audio = _audio_stream(c, stream, path)
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=sample_rate)
            frames = (out for frame in itertools.chain(c.decode(audio), [None])  # None: the resampler's flush
                      for out in resampler.resample(frame))
            for out in frames:
                pending.append(out.to_ndarray().astype(np.float32, copy=False))
                held += pending[-1].shape[1]
                if held >= size:
                    joined = np.concatenate(pending, axis=1)
                    for start in range(0, held - size + 1, size):
                        yield joined[:, start : start + size]
                    rest = joined[:, held - held % size :]
                    pending, held = ([rest] if rest.shape[1] else []), rest.shape[1]
    except av.error.FFmpegError as e:
        raise MediaError(f"audio cannot be decoded (FFmpeg: {_ffmpeg_reason(e)})", path) from None
    if held:
        yield np.concatenate(pending, axis=1)


def read_audio(path: str | os.PathLike, sample_rate: int, channels: int = 2, stream: int = 0) -> np.ndarray:
    """Decode an audio stream of any container to float32 ``[channels, samples]`` at ``sample_rate``."""
    chunks = list(audio_blocks(path, sample_rate, channels, stream))
    if not chunks:
        return np.zeros((channels, 0), np.float32)
    return np.concatenate(chunks, axis=1)


def _chunks(audio: np.ndarray | Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """An array, or consecutive blocks of one, as consecutive float32 blocks."""
    if isinstance(audio, np.ndarray):
        yield np.asarray(audio, np.float32)
    else:
        for block in audio:
            yield np.asarray(block, np.float32)


def _audio_frames(audio: np.ndarray | Iterable[np.ndarray], sample_rate: int, start_pts: int = 0,
                  size: int = 1024, count: list[int] | None = None) -> Iterator[av.AudioFrame]:
    """``audio`` (an array or consecutive blocks) as frames of ``size`` samples (the last one
    shorter), their pts counted from ``start_pts``; ``count`` (a one-element list), when given,
    holds the samples framed so far."""
    done, pending = 0, None
    for chunk in itertools.chain(_chunks(audio), [None]):
        if chunk is not None:
            pending = chunk if pending is None or not pending.shape[1] else np.concatenate([pending, chunk], axis=1)
            if pending.shape[1] < size:
                continue
            usable = pending.shape[1] - pending.shape[1] % size
        elif pending is None:
            return
        else:
            usable = pending.shape[1]
        for i in range(0, usable, size):
            part = pending[:, i : min(usable, i + size)]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(part), format="fltp",
                                               layout="stereo" if part.shape[0] == 2 else "mono")
            frame.sample_rate = sample_rate
            frame.pts = start_pts + done
            frame.time_base = Fraction(1, sample_rate)
            done += part.shape[1]
            if count is not None:
                count[0] = done
            yield frame
        pending = pending[:, usable:]


def encode_audio(container, stream, audio: np.ndarray, sample_rate: int) -> None:
    """Encode float audio ``[channels, samples]`` into ``stream`` of ``container`` and flush."""
    for frame in _audio_frames(audio, sample_rate):
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def _pcm16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(audio, np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def quantize_pcm16(audio: np.ndarray) -> np.ndarray:
    """``audio`` as it reads back from :func:`write_wav` (16-bit, decoded as x / 32768): what is
    computed from it then matches what is computed from the file."""
    return (_pcm16(audio) / 32768.0).astype(np.float32)


def write_wav(path: str | os.PathLike, audio: np.ndarray | Iterable[np.ndarray], sample_rate: int,
              comment: str | None = None, float32: bool = False) -> None:
    """Write float audio ``[channels, samples]`` (an array, or consecutive blocks of one, written
    as they come) as 16-bit PCM WAV, or with ``float32`` as 32-bit float WAV (every sample as it
    is), atomically; ``comment`` goes into its metadata (INFO ICMT)."""
    with atomic_path(path, suffix=".wav") as tmp, av.open(tmp, "w", format="wav") as c:
        if comment:
            c.metadata["comment"] = comment
        s = None
        pts = 0
        for block in _chunks(audio):
            if s is None:
                s = c.add_stream("pcm_f32le" if float32 else "pcm_s16le", rate=sample_rate)
                s.layout = "stereo" if block.shape[0] == 2 else "mono"
            for i in range(0, block.shape[1], 4096):
                pcm = block[:, i : i + 4096] if float32 else _pcm16(block[:, i : i + 4096])
                chunk = np.ascontiguousarray(pcm.T.reshape(1, -1))
                frame = av.AudioFrame.from_ndarray(chunk, format="flt" if float32 else "s16", layout=s.layout.name)
                frame.sample_rate = sample_rate
                frame.pts = pts
                pts += pcm.shape[1]
                for p in s.encode(frame):
                    c.mux(p)
        if s is None:  # nothing at all: an empty stereo file
            s = c.add_stream("pcm_f32le" if float32 else "pcm_s16le", rate=sample_rate)
            s.layout = "stereo"
        for p in s.encode():
            c.mux(p)


MUX_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def _codec_name(stream) -> str:
    """The codec's own name (``av1``), not its decoder's (``libdav1d``)."""
    return stream.codec_context.codec.canonical_name


def _can_hold(fmt: str, stream) -> bool:
    """Whether a ``fmt`` container can hold a copy of video ``stream`` with AAC music: a trial
    header and trailer written in memory. FFmpeg refuses some codecs when the stream is added
    (ProRes or VP8 in MP4) and others only when the header is written (VP8, VP9 or AV1 in MOV),
    so a table of codecs would not do."""
    try:
        with av.open(io.BytesIO(), "w", format=fmt) as trial:
            trial.add_stream_from_template(stream, opaque=True)
            trial.add_stream("aac", rate=48000)
            trial.start_encoding()
    except (av.error.FFmpegError, ValueError):
        return False
    return True


def _mux_support(video_path: str) -> tuple[str, list[str]]:
    """The codec of the video stream of ``video_path`` and the extensions of :data:`MUX_FORMATS`
    whose container can hold it (copied) with AAC music."""
    container, stream = _open_video(video_path)
    with container:
        holds = {fmt: _can_hold(fmt, stream) for fmt in set(MUX_FORMATS.values())}
        codec = _codec_name(stream)
    return codec, [ext for ext, fmt in MUX_FORMATS.items() if holds[fmt]]


def mux_extensions(video_path: str | os.PathLike) -> list[str]:
    """The extensions of :data:`MUX_FORMATS` whose container can hold the video stream of
    ``video_path`` (copied) with AAC music, in the order of :data:`MUX_FORMATS`."""
    return _mux_support(os.fspath(video_path))[1]


def _check_extension(out_path: str) -> str:
    ext = os.path.splitext(out_path)[1].lower()
    if ext not in MUX_FORMATS:
        raise MediaError(f"cannot write a {ext or 'extensionless'} file with AAC music; "
                         f"use one of {', '.join(MUX_FORMATS)}", out_path)
    return ext


def check_mux(video_path: str | os.PathLike, out_path: str | os.PathLike) -> None:
    """Raise a MediaError naming ``out_path`` unless :func:`mux_music` can write the video of
    ``video_path`` there: meant to run before any long work. The error lists the extensions
    that would work."""
    video_path, out_path = os.fspath(video_path), os.fspath(out_path)
    ext = _check_extension(out_path)
    codec, works = _mux_support(video_path)
    if ext not in works:
        hint = (f"use {', '.join(works[:-1])} or {works[-1]}" if len(works) > 1 else f"use {works[0]}" if works
                else f"none of {', '.join(MUX_FORMATS)} can")
        raise MediaError(f"a {ext} file cannot hold the {codec} video of {video_path}; {hint}", out_path)


def _video_packets(src, stream) -> Iterator[tuple[float, av.Packet]]:
    """``(time in seconds, packet)`` for every packet of ``stream`` to copy, in decoding order.

    Only the demuxer's final flush packet (no data) is left out. Packets without a decoding
    timestamp are copied too: Matroska stores presentation times only, so the first packets of
    a stream with B-frames (the first keyframe among them) have none, and the output muxer
    derives it from the presentation time. The time (for interleaving the music) is the dts,
    else the pts, else the previous packet's."""
    t = 0.0
    for packet in src.demux(stream):
        if packet.size == 0:
            continue
        ts = packet.dts if packet.dts is not None else packet.pts
        if ts is not None and packet.time_base:
            t = float(ts * packet.time_base)
        yield t, packet


@dataclass
class _StreamSummary:
    kind: str  # "video", "audio", ...
    packets: int = 0  # packets with data
    keyframes: int = 0
    first: float = float("inf")  # earliest presentation time, seconds
    end: float = float("-inf")  # latest presentation time + duration

    @property
    def span(self) -> float:
        return max(self.end - self.first, 0.0)


def _summarize(path: str) -> list[_StreamSummary]:
    """What the packets of each stream of ``path`` hold, in stream order (one demux pass,
    nothing decoded)."""
    with av.open(path) as c:
        out = [_StreamSummary(s.type) for s in c.streams]
        for packet in c.demux():
            if packet.size == 0:
                continue
            s = out[packet.stream.index]
            s.packets += 1
            s.keyframes += bool(packet.is_keyframe)
            if packet.pts is not None and packet.time_base:
                s.first = min(s.first, float(packet.pts * packet.time_base))
                s.end = max(s.end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    return out


def _decoded_keyframes(path: str) -> int:
    """How many frames the first video stream of ``path`` decodes to when its decoder is asked to
    skip all but keyframes (some decoders decode every frame regardless); -1 on a decoding error."""
    with av.open(path) as c:
        stream = c.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        try:
            return sum(1 for _ in c.decode(stream))
        except av.error.FFmpegError:
            return -1


def _verify_mux(video_path: str, written: str, out_path: str, audio_samples: int, sample_rate: int) -> None:
    """Check the file :func:`mux_music` wrote at ``written`` against its input before it goes
    to ``out_path``: one video stream holding every packet of the input's, spanning the same
    time (within two frames), whose keyframes all decode, and one audio stream as long as the
    music (within the two AAC frames of encoder delay and padding). Anything else is a
    MediaError naming ``out_path``.

    Decoding only the keyframes keeps this cheap; with every packet present, in order, the frames
    between them decode as they do in the input."""
    with av.open(video_path) as src:
        v_in = src.streams.video[0]
        index, step = v_in.index, 1.0 / float(v_in.average_rate or v_in.guessed_rate or 25)
    expected = _summarize(video_path)[index]
    streams = _summarize(written)
    videos = [s for s in streams if s.kind == "video"]
    audios = [s for s in streams if s.kind == "audio"]
    if len(videos) != 1 or len(audios) != 1:
        raise MediaError(f"the written file has {len(videos)} video and {len(audios)} audio streams instead of "
                         "one each; nothing was written", out_path)
    (video,), (audio,) = videos, audios
    decoded = _decoded_keyframes(written)
    problems = []
    if video.packets != expected.packets:
        problems.append(f"{video.packets} of the {expected.packets} video packets")
    if abs(video.span - expected.span) > 2 * step + 1e-3:
        problems.append(f"video of {video.span:.3f} s instead of {expected.span:.3f} s")
    if decoded < max(video.keyframes, 1):
        problems.append(f"{max(decoded, 0)} of its {video.keyframes} keyframes decode")
    seconds = audio_samples / sample_rate
    if abs(audio.span - seconds) > 2048 / sample_rate + 0.01:
        problems.append(f"music of {audio.span:.3f} s instead of {seconds:.3f} s")
    if problems:
        raise MediaError(f"the written file is broken ({'; '.join(problems)}); nothing was written", out_path)


def mux_music(video_path: str | os.PathLike, out_path: str | os.PathLike, audio: np.ndarray | Iterable[np.ndarray],
              sample_rate: int, bitrate: int = 192_000, start_time: float | None = None,
              comment: str | None = None, metadata: dict[str, str] | None = None, samples: int | None = None) -> None:
    """Write ``out_path``: the first video stream of ``video_path`` copied packet for packet (no
    re-encode) and ``audio`` (float ``[2, samples]``, starting at the first video frame; an array,
    or consecutive blocks of one, encoded as the muxing reaches them, ``samples`` long in all) as AAC.
    Other streams of the input (its soundtrack, subtitles) are left out. ``start_time`` is the
    first video frame's time (from a probe already made; probed here when None); ``comment``
    and ``metadata`` (more tags, e.g. ``description``) go into the container's metadata. The written
    file is checked against the input (:func:`_verify_mux`) before it is renamed into place, so
    a broken mux fails with one line and leaves no output. Atomic."""
    video_path, out_path = os.fspath(video_path), os.fspath(out_path)
    check_mux(video_path, out_path)
    ext = os.path.splitext(out_path)[1].lower()
    if start_time is None:
        with VideoReader(video_path) as reader:
            start_time = reader.info.start_time
    with atomic_path(out_path, suffix=ext) as tmp:
        try:
            encoded = _write_mux(video_path, tmp, MUX_FORMATS[ext], audio, sample_rate, bitrate, start_time,
                                 {**(metadata or {}), **({"comment": comment} if comment else {})})
        except av.error.FFmpegError as e:
            raise MediaError(f"cannot be written ({_ffmpeg_reason(e)})", out_path) from None
        expected = audio.shape[1] if isinstance(audio, np.ndarray) else samples if samples is not None else encoded
        _verify_mux(video_path, tmp, out_path, expected, sample_rate)  # the file's music against what was asked


def _write_mux(video_path: str, tmp: str, fmt: str, audio: np.ndarray | Iterable[np.ndarray], sample_rate: int,
               bitrate: int, start: float, metadata: dict[str, str]) -> int:
    """The copy and encode of :func:`mux_music` into ``tmp`` (a ``fmt`` container), interleaved
    by time; returns the number of music samples encoded."""
    with av.open(video_path) as src, av.open(tmp, "w", format=fmt) as dst:
        dst.metadata.update(metadata)
        v_in = src.streams.video[0]
        # opaque: the stream is copied as it is, not set up for an encoder named like its decoder
        # (there is none for decoders such as libdav1d)
        v_out = dst.add_stream_from_template(v_in, opaque=True)
        a_out = dst.add_stream("aac", rate=sample_rate)
        a_out.layout = "stereo"
        a_out.bit_rate = bitrate
        count = [0]
        frames = _audio_frames(audio, sample_rate, start_pts=int(round(max(start, 0.0) * sample_rate)), count=count)
        audio_time, flushed = 0.0, False  # end of the music encoded so far; encoder flushed

        def mux_audio_until(t: float) -> None:
            nonlocal audio_time, flushed
            while not flushed and audio_time <= t:
                frame = next(frames, None)
                for p in a_out.encode(frame):
                    dst.mux(p)
                if frame is None:
                    flushed = True
                else:
                    audio_time = float(frame.pts + frame.samples) / sample_rate

        for t, packet in _video_packets(src, v_in):
            mux_audio_until(t)
            packet.stream = v_out
            dst.mux(packet)
        mux_audio_until(float("inf"))
    return count[0]
