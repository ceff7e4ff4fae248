"""The one set-up of an HTTP test: a published data folder, a running ``socdef serve`` on a port
it picked, and keys of a given tier, each on an account of its own.

A module's ``data_dir`` fixture returns ``published(tmp_path_factory.mktemp(name), iocs=…,
days=…)`` and its ``server`` fixture does ``yield from serving(data_dir, tmp_path_factory,
*options)``; a test that needs a server of its own asks for ``serve_process`` (conftest).

Limits are counted per account, so ``new_key`` makes a fresh account each time unless a test
names the ``user`` (to share one account's window, or to act as a known person).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from generator.store.synthetic import synthetic_store
from tests.conftest import Server, build_and_publish, running_server, socdef_here
from worker import encoding
from worker.access.keys import KEY_PREFIX
from worker.contract import layout


def published(
    data: Path,
    iocs: int = 300,
    days: int = 10,
    *,
    now: int | None = None,
    store: Callable[[Path], object] | None = None,
) -> Path:
    """``data`` with a store (a synthetic one of ``iocs`` indicators over ``days`` days ending
    ``now``, or what ``store`` writes to ``data/store``), built and published to its bucket."""
    if store is not None:
        store(data / "store")
    else:
        synthetic_store(
            str(data / "store"), iocs, now=int(time.time()) if now is None else now, days=days
        )
    return build_and_publish(data)


def serving(
    data_dir: Path, tmp_path_factory: pytest.TempPathFactory, *extra: str
) -> Iterator[Server]:
    """A running ``socdef serve --port 0`` over ``data_dir`` with ``extra`` options, for a
    fixture to ``yield from``; it is stopped when the fixture ends."""
    with running_server(data_dir, tmp_path_factory.mktemp("log") / "server.log", *extra) as srv:
        yield srv


def fresh_user(tag: str = "user") -> str:
    """An address no other test uses: an account of its own, with its own limit windows."""
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.org"


def new_key(data_dir: Path, tier: str | None = "free", user: str | None = None) -> str:
    """An API key made with ``socdef keys create``: of ``tier`` (the CLI's default if None), for
    ``user`` or else a fresh account. The command runs in this process (``socdef_here``: the
    command line's own entry point, without starting Python for each key); tests of the command
    line as a process call ``socdef`` themselves."""
    args = ["keys", "create", "--user", user or fresh_user()]
    if tier is not None:
        args += ["--tier", tier]
    key = socdef_here(*args, data_dir=data_dir).stdout.split("API key: ")[1].split()[0]
    assert key.startswith(KEY_PREFIX)
    return key


def bearer(key: str) -> dict[str, str]:
    """The request headers that present ``key``."""
    return {"Authorization": f"Bearer {key}"}


def latest_manifest(data: Path) -> dict:
    """The manifest of the latest build of a data folder made by :func:`published`."""
    build_dir = data / "build"
    build_id = (build_dir / "LATEST").read_text().strip()
    return json.loads((build_dir / layout.manifest_key(build_id)).read_bytes())


def refuse_compression(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any gzip compression in the request path fail the test."""

    def refuse(body: bytes) -> bytes:
        raise AssertionError("a body was compressed in the request path")

    monkeypatch.setitem(encoding.CODERS, "gzip", refuse)
