"""Colour features of a frame: Diff-V2M's 3072-value "emotional" histogram and plain descriptors.

The Diff-V2M paper does not publish its colour recipe; 3072 = 3 x 32 x 32 fits an RGB-uv
(log-chroma) histogram as in HistoGAN, which the paper's figure draws. Two named recipes:

``rgbuv32`` (default)
    For each channel c of (R, G, B) and the two others o1, o2 (in RGB order), a pixel lies at
    ``u = log(I_c + eps) - log(I_o1 + eps)``, ``v = log(I_c + eps) - log(I_o2 + eps)`` with I in
    [0, 1] and eps = 1e-6 (HistoGAN's constants). Each pixel is weighted by its intensity
    ``sqrt(R^2 + G^2 + B^2)`` and counted in a 32 x 32 grid over [-3, 3]^2. HistoGAN spreads each
    pixel with an inverse-quadratic kernel of width 0.02; the bins here are 0.1875 wide, so hard
    binning is the same histogram up to pixels near bin edges. Unlike HistoGAN, values outside
    [-3, 3] are clipped into the border bins (saturated colours would otherwise vanish). The
    three 32 x 32 grids are normalised together to sum to 1 and flattened channel-major
    (R grid, G grid, B grid; u rows, v columns).
``hsv16x16x12``
    A joint HSV histogram with 16 hue, 16 saturation and 12 value bins (OpenCV's HSV ranges),
    normalised to sum to 1, flattened hue-major.

Descriptors, each a mean over the frame's pixels: ``brightness`` = Rec. 709 luma in [0, 1],
``saturation`` = HSV saturation in [0, 1], ``warmth`` = red minus blue in [-1, 1].
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
