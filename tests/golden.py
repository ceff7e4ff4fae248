"""Golden files: ``tests/golden/<name>`` holds the expected bytes of one rendering.

``SOCDEF_UPDATE_GOLDEN=1 pytest ...`` rewrites them; review the diff before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"


def assert_golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("SOCDEF_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"no golden file {path}: run with SOCDEF_UPDATE_GOLDEN=1"
    expected = path.read_bytes()
    assert data == expected, f"{name} differs from its golden file (SOCDEF_UPDATE_GOLDEN=1)"
