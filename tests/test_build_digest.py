"""The build tree of the bundled sample is pinned byte for byte.

``tests/golden/build-tree.sha256`` lists every file of the build of the sample store (ingested at
a fixed time) with its SHA-256, in ``sha256sum`` format. A refactoring must leave it unchanged; a
deliberate change of an output regenerates it (``SOCDEF_UPDATE_GOLDEN=1 pytest
tests/test_build_digest.py``) and the diff is reviewed with the change.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from generator.build.tree import build
from generator.ingest.pipeline import ingest, offline_reader
from generator.sources.catalog import SAMPLE_DIR, load_sources
from generator.store.generations import Store

NOW = 1_795_000_000
DIGESTS = Path(__file__).resolve().parent / "golden" / "build-tree.sha256"


def tree_lines(root: Path) -> list[str]:
    return [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}"
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]


def test_the_sample_build_tree_is_unchanged(tmp_path):
    store = Store(tmp_path / "store")
    ingest(store, load_sources(), offline_reader(SAMPLE_DIR), now=NOW, shift_dates=True)
    build(store, tmp_path / "build")
    lines = tree_lines(tmp_path / "build")
    if os.environ.get("SOCDEF_UPDATE_GOLDEN"):
        DIGESTS.write_text("\n".join(lines) + "\n")
    expected = DIGESTS.read_text().splitlines()
    changed = sorted(set(lines) ^ set(expected))
    assert lines == expected, f"{len(changed)} lines differ, first: {changed[:6]}"
