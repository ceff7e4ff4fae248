"""Timestamps as every format writes them: UTC, whole seconds, ``Z``."""

from __future__ import annotations

import time
from functools import lru_cache


@lru_cache(maxsize=1 << 16)  # records of one article share their times: a build formats each once
def iso_z(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
