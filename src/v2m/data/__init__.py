"""Datasets: preparing them from music videos (:mod:`.prepare`) and reading official layouts."""

from .prepare import PrepareSettings, parse_splits, run_prepare

__all__ = ["PrepareSettings", "parse_splits", "run_prepare"]
