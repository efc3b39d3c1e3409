"""Where the tests' fixtures are.

Everything small lives in the repository under ``tests/fixtures/`` (copied from the official
projects; see each folder's README). The one large file, the official-code golden checkpoint
``golden_A.ckpt`` (213 MB), does not: tests that need it read the path in ``V2M_GOLDEN_CKPT``
and are skipped, with a reason naming the file, when the variable is unset. Where it is set,
the file must exist (a wrong path fails instead of skipping), so ``.ci/run``, which sets it
wherever the file is, always runs those tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OFFICIAL = FIXTURES / "diffv2m_official"  # the published Diff-V2M config and checkpoint key lists
GOLDEN = OFFICIAL / "golden"  # the official code's golden inputs and outputs (fixture set A)
STAD_EXAMPLE = FIXTURES / "stad_example" / "0102_0011"  # official ControllableV2M preprocessing, 5 shots

GOLDEN_CKPT_VARIABLE = "V2M_GOLDEN_CKPT"


def golden_checkpoint() -> Path:
    """The golden Lightning checkpoint, or a skip naming the file and the variable."""
    value = os.environ.get(GOLDEN_CKPT_VARIABLE)
    if not value:
        pytest.skip(f"golden_A.ckpt (the official-code golden checkpoint, 213 MB) is not in the repository: "
                    f"set {GOLDEN_CKPT_VARIABLE} to its path to run this test")
    path = Path(value)
    if not path.is_file():
        pytest.fail(f"{GOLDEN_CKPT_VARIABLE}={value}: no such file (it should be golden_A.ckpt)")
    return path
