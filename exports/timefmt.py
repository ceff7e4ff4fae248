"""Timestamps as every format writes them: UTC, whole seconds, ``Z``."""

from __future__ import annotations

import time


def iso_z(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
