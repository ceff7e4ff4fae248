"""Plain text: one indicator value per line, for firewalls and blocklists."""

from __future__ import annotations

from exports.model import IOCRecord


def render_line(r: IOCRecord) -> bytes:
    return r.value.encode() + b"\n"
