"""``socdef site --out DIR``: a build's docs site as plain files, for a static host.

The ``site/…`` objects of the build are written under DIR with the paths the worker serves
them at (``site/docs/index.html`` → ``DIR/docs/index.html``), each whole through a temporary
file and a rename, as text (pages stored compressed are inflated: ``worker/contract/coded.py``).
Nothing else of the build is copied.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from generator.errors import CorruptFile, MissingFile, on_disk
from worker.contract import coded, layout

PREFIX = "site/"


def site_files(build_dir: Path, build_id: str | None = None) -> dict[str, tuple[Path, bool]]:
    """Relative path → (object file, whether it is stored compressed), for every site object
    of the build (default: the latest)."""
    if build_id is None:
        latest = build_dir / "LATEST"
        if not latest.is_file():
            raise MissingFile(f"no build in {build_dir}: run socdef build first")
        build_id = latest.read_text().strip()
    path = build_dir / layout.manifest_key(build_id)
    try:
        manifest = json.loads(path.read_bytes())
    except ValueError as exc:
        raise CorruptFile(
            f"the build manifest {path} is damaged ({exc}); run socdef build"
        ) from exc
    compressed = manifest.get("coded") or {}
    files = {
        key[len(PREFIX) :]: (build_dir / layout.object_key(sha), key in compressed)
        for key, (sha, _size) in manifest["objects"].items()
        if key.startswith(PREFIX)
    }
    if not files:
        raise CorruptFile(f"build {build_id} holds no site: it was built without the site stage")
    return dict(sorted(files.items()))


def export_site(build_dir: Path, out_dir: Path, build_id: str | None = None) -> int:
    """Write the site under ``out_dir``; returns how many files were written."""
    root = out_dir.resolve()
    with on_disk(f"reading build {build_id or 'LATEST'} in {build_dir}"):
        files = site_files(build_dir, build_id)
    with on_disk(f"writing the site to {out_dir}"):
        _write(root, files, out_dir)
    return len(files)


def _write(root: Path, files: dict[str, tuple[Path, bool]], out_dir: Path) -> None:
    for rel, (source, compressed) in files.items():
        target = (root / rel).resolve()
        if not target.is_relative_to(root):
            raise CorruptFile(f"site object {rel!r} lies outside {out_dir}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        data = source.read_bytes()
        tmp.write_bytes(coded.decompress(data) if compressed else data)
        os.replace(tmp, target)
