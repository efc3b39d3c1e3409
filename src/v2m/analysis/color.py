"""Colour features of a frame: Diff-V2M's 3072-value colour histogram (named recipes
``rgbuv32``, HistoGAN's RGB-uv histogram, the default; ``hsv16x16x12``, a joint HSV histogram)
and plain descriptors (brightness = mean Rec. 709 luma, saturation = mean HSV saturation,
warmth = mean red minus blue). The recipes' definitions: docs/analysis.md, "Colour recipes".
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

RECIPES = ("rgbuv32", "hsv16x16x12")
HIST_SIZE = 3072
_UV_BINS, _UV_RANGE, _EPS = 32, 3.0, 1e-6


@functools.lru_cache(maxsize=4)
def _uv_bin_tables(bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables indexed by ``a * 256 + b`` for 8-bit levels a, b: the row ``u * bins`` and
    the column ``v`` of ``log(a / 255 + eps) - log(b / 255 + eps)``. Only 256 x 256 level pairs
    exist, so each pixel's bin is two lookups (the tables are small enough to stay in cache)."""
    logs = np.log(np.arange(256, dtype=np.float32) / np.float32(255.0) + np.float32(_EPS))
    scale = np.float32(bins / (2 * _UV_RANGE))
    cell = np.clip(((logs[:, None] - logs[None, :]) + np.float32(_UV_RANGE)) * scale, 0, bins - 1)
    column = cell.astype(np.uint16).ravel()
    return column * np.uint16(bins), column


def rgbuv_histogram(rgb: np.ndarray, bins: int = _UV_BINS) -> np.ndarray:
    """HistoGAN-style RGB-uv histogram of an RGB uint8 image: ``[3 * bins * bins]``, sums to 1."""
    rows, columns = _uv_bin_tables(bins)
    pixels = rgb.reshape(-1, 1, 3)
    levels = pixels.astype(np.float32) / np.float32(255.0)
    weight = np.sqrt(cv2.transform(levels * levels, np.ones((1, 3), np.float32))).ravel()  # |RGB|
    channel = [pixels[:, 0, c].astype(np.uint16) for c in range(3)]
    hist = np.zeros((3, bins * bins), dtype=np.float64)
    for c in range(3):
        o1, o2 = [k for k in range(3) if k != c]
        high = channel[c] << 8
        cell = rows[high | channel[o1]] + columns[high | channel[o2]]
        hist[c] = np.bincount(cell, weights=weight, minlength=bins * bins)
    total = hist.sum()
    return (hist.ravel() / total if total > 0 else hist.ravel()).astype(np.float32)


def hsv_histogram(rgb: np.ndarray, bins: tuple[int, int, int] = (16, 16, 12)) -> np.ndarray:
    """Joint HSV histogram of an RGB uint8 image: ``[16 * 16 * 12]``, sums to 1."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(bins), [0, 180, 0, 256, 0, 256])
    hist = hist.ravel().astype(np.float64)
    return (hist / hist.sum()).astype(np.float32)


def color_histogram(rgb: np.ndarray, recipe: str = "rgbuv32") -> np.ndarray:
    """The 3072-value colour histogram of ``rgb`` by the named ``recipe``."""
    if recipe == "rgbuv32":
        return rgbuv_histogram(rgb)
    if recipe == "hsv16x16x12":
        return hsv_histogram(rgb)
    raise ValueError(f"unknown colour recipe {recipe!r}; choose one of {', '.join(RECIPES)}")


def color_descriptors(rgb: np.ndarray) -> tuple[float, float, float]:
    """(brightness, saturation, warmth) of an RGB uint8 image."""
    r, g, b = (m / 255.0 for m in cv2.mean(rgb)[:3])  # each a mean, so the means combine exactly
    brightness = 0.2126 * r + 0.7152 * g + 0.0722 * b
    warmth = r - b
    # OpenCV's float HSV has S = (max - min) / max, and 0 where max is 0.
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32) / np.float32(255.0), cv2.COLOR_RGB2HSV)
    saturation = cv2.mean(hsv)[1]
    return float(brightness), float(saturation), float(warmth)
