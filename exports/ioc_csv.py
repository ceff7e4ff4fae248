"""CSV rows with the spec's columns (the header is ``worker.contract.layout.CSV_HEADER``)."""

from __future__ import annotations

import csv
import io

from exports.model import IOCRecord
from exports.timefmt import iso_z


def _row(r: IOCRecord) -> tuple[str, ...]:
    return (
        r.id,
        r.type,
        r.value,
        r.confidence,
        iso_z(r.first_seen),
        iso_z(r.last_seen),
        r.article_id,
        r.feed_name,
        r.category,
        ",".join(r.tags),
        r.status,
        iso_z(r.valid_until) if r.valid_until else "",
        ",".join(r.warnings),
        ",".join(r.categories),
    )


def render_line(r: IOCRecord) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(_row(r))
    return buf.getvalue().encode()


class _Lines(list):
    """A file for ``csv.writer`` that keeps each written row as one item."""

    def write(self, text: str) -> None:
        self.append(text.encode())


def render_lines(records: list[IOCRecord]) -> list[bytes]:
    """``render_line`` of every record, through one writer (it writes one call per row)."""
    lines = _Lines()
    writerow = csv.writer(lines, lineterminator="\n").writerow
    for r in records:
        writerow(_row(r))
    if len(lines) != len(records):
        raise RuntimeError("csv rows and records differ in number")
    return list(lines)
