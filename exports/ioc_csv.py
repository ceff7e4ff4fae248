"""CSV rows with the spec's columns (the header is ``worker.layout.CSV_HEADER``)."""

from __future__ import annotations

import csv
import io

from exports.model import IOCRecord
from exports.timefmt import iso_z


def render_line(r: IOCRecord) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(
        (
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
        )
    )
    return buf.getvalue().encode()
