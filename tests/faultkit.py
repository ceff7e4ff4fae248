"""Helpers of the fault-injection suite (tests/test_faults.py).

- digests: of a store's records and of a file tree, taken before and after a fault;
- checks: a build (or the build a pointer names) is whole, the worker answers, limits held;
- processes: run ``socdef`` in its own process group and ``kill -9`` it;
- a size-limited file system (tmpfs when root, else a per-file size limit);
- :class:`FaultLog`: a session-wide count of faults injected, bad inputs tried and data lost,
  written to ``faults.json`` under pytest's base temporary folder (and to
  ``$SOCDEF_FAULTS_REPORT`` when set) and printed at the end of the session.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from generator.store.generations import Store
from tests import support
from tests.conftest import ROOT
from worker.contract import layout

# ---------------------------------------------------------------- the session's count


@dataclass
class FaultLog:
    faults: Counter[str] = field(default_factory=Counter)
    bad_inputs: Counter[str] = field(default_factory=Counter)
    data_lost: int = 0
    checks: int = 0  # before/after comparisons that found nothing lost

    def fault(self, kind: str, n: int = 1) -> None:
        self.faults[kind] += n

    def bad_input(self, kind: str, n: int = 1) -> None:
        self.bad_inputs[kind] += n

    def summary(self) -> dict:
        return {
            "faults_injected": sum(self.faults.values()),
            "bad_inputs_tried": sum(self.bad_inputs.values()),
            "data_lost": self.data_lost,
            "integrity_checks": self.checks,
            "faults": dict(sorted(self.faults.items())),
            "bad_inputs": dict(sorted(self.bad_inputs.items())),
        }


LOG = FaultLog()


@pytest.fixture(scope="session")
def fault_log(request, tmp_path_factory) -> Iterator[FaultLog]:
    yield LOG
    summary = json.dumps(LOG.summary(), indent=2)
    paths = [tmp_path_factory.getbasetemp() / "faults.json"]
    if os.environ.get("SOCDEF_FAULTS_REPORT"):
        paths.append(Path(os.environ["SOCDEF_FAULTS_REPORT"]))
    for path in paths:
        path.write_text(summary + "\n")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        s = LOG.summary()
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\nfaults injected: {s['faults_injected']}, bad inputs tried: "
                f"{s['bad_inputs_tried']}, data lost: {s['data_lost']} "
                f"(written to {paths[0]})"
            )


# ---------------------------------------------------------------- digests and checks


def store_digest(root: Path, *, with_state: bool = True) -> str:
    """SHA-256 of the store's committed records (articles, sightings) and, unless told not to,
    its state (the sources' fetch state), row order aside."""
    store = Store(root)
    digest = hashlib.sha256()
    for table in (store.articles(), store.sightings()):
        rows = sorted(json.dumps(r, sort_keys=True, default=str) for r in table.to_pylist())
        digest.update(f"{len(rows)}\n".encode())
        for row in rows:
            digest.update(row.encode() + b"\n")
    if with_state:
        digest.update(json.dumps(store.state(), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def tree_digest(root: Path) -> dict[str, str]:
    """Each file under ``root`` (relative path) and the SHA-256 of its bytes."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            found[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def assert_kept(
    before: dict[str, str],
    after: dict[str, str],
    *,
    may_change: tuple[str, ...] = (),
    what: str = "tree",
) -> None:
    """Every file of ``before`` is in ``after`` with the same bytes (files may be added; those in
    ``may_change``, such as a pointer, may have new bytes)."""
    lost = [k for k, v in before.items() if k not in may_change and after.get(k) != v]
    gone = [k for k in may_change if k in before and k not in after]
    if lost or gone:
        LOG.data_lost += len(lost) + len(gone)
        raise AssertionError(
            f"{what}: {len(lost) + len(gone)} files lost or changed: {(lost + gone)[:5]}"
        )
    LOG.checks += 1


def assert_same_store(before: str, root: Path, *, with_state: bool = True) -> None:
    if store_digest(root, with_state=with_state) != before:
        LOG.data_lost += 1
        raise AssertionError(f"the store under {root} changed")
    LOG.checks += 1


def assert_build_whole(folder: Path, build_id: str) -> dict:
    """The manifest of ``build_id`` under ``folder`` (a build folder or a folder bucket) reads,
    and every object it names is there with its size and SHA-256. Answers the manifest."""
    path = folder / layout.manifest_key(build_id)
    raw = path.read_bytes()
    manifest = json.loads(raw)
    assert manifest["build_id"] == build_id
    bad = []
    for sha, size in {tuple(v) for v in manifest["objects"].values()}:
        obj = folder / layout.object_key(sha)
        if (
            not obj.is_file()
            or obj.stat().st_size != size
            or hashlib.sha256(obj.read_bytes()).hexdigest() != sha
        ):
            bad.append(layout.object_key(sha))
    if bad:
        LOG.data_lost += len(bad)
        raise AssertionError(
            f"build {build_id} under {folder}: {len(bad)} objects missing or "
            f"damaged, e.g. {bad[:3]}"
        )
    LOG.checks += 1
    return manifest


def latest_build(build_dir: Path) -> str:
    return (build_dir / "LATEST").read_text().strip()


def pointed_build(bucket: Path) -> str:
    """The build id a folder bucket's pointer names, checked whole."""
    build_id = json.loads((bucket / layout.POINTER_KEY).read_bytes())["build_id"]
    assert_build_whole(bucket, build_id)
    return build_id


# ---------------------------------------------------------------- processes


def spawn(
    *args: str,
    data_dir: Path,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    limit_file_size: int | None = None,
    capture: bool = False,
) -> subprocess.Popen:
    """``socdef ARGS --data-dir DATA_DIR`` in its own process group; output to ``log`` (or to
    pipes with ``capture``)."""
    out = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    preexec = None
    if limit_file_size is not None:

        def preexec() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails: EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    try:
        return subprocess.Popen(
            [sys.executable, "-m", "generator", *args, "--data-dir", str(data_dir)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE if capture else out,
            stderr=subprocess.PIPE if capture else subprocess.STDOUT,
            text=capture,
            start_new_session=True,
            preexec_fn=preexec,
        )
    finally:
        if log is not None:
            out.close()


def group_alive(pgid: int) -> list[int]:
    """The processes still in process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    found.append(int(entry.name))
    return found


def kill9(proc: subprocess.Popen, *, orphans_within: float = 20) -> bool:
    """``kill -9`` the process (only it, as ``kill -9 PID`` does); True if it was still running.
    Waits for any child it leaves behind to end (they must notice and exit by themselves)."""
    running = proc.poll() is None
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + orphans_within
    while (left := group_alive(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if left:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise AssertionError(
            f"processes {left} of the killed command were still running "
            f"{orphans_within:.0f} s after it"
        )
    return running


def wait_for(condition, timeout: float, what: str, poll: float = 0.02):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def assert_clean_error(result: subprocess.CompletedProcess, *words: str) -> None:
    """A failed command: status 1, one ``Error: …`` line, no traceback."""
    text = result.stderr.strip()
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert text.startswith("Error: ") and "Traceback" not in text, text
    assert len(text.splitlines()) == 1, text
    for word in words:
        assert word.lower() in text.lower(), text


# ---------------------------------------------------------------- the worker


def new_key(data_dir: Path, tier: str) -> str:
    """A key of ``tier`` on the one account the fault tests share."""
    return support.new_key(data_dir, tier, "faults@example.org")


def assert_worker_answers(url: str, key: str, build_id: str | None = None) -> None:
    health = httpx.get(url + "/healthz", timeout=10)
    assert health.status_code == 200, health.text
    if build_id is not None:
        assert health.json()["build_id"] == build_id
    iocs = httpx.get(url + "/api/v1/iocs", headers={"X-API-Key": key}, timeout=30)
    assert iocs.status_code == 200, iocs.text
    assert iocs.json()["data"], iocs.text


def admitted(url: str, key: str, n: int) -> tuple[int, set[str]]:
    """Send ``n`` keyed requests one after the other: how many were admitted (200), and the
    minute windows (``X-RateLimit-Reset``) the answers named."""
    ok, windows = 0, set()
    with httpx.Client(timeout=30) as client:
        for _ in range(n):
            r = client.get(url + "/api/v1/iocs", headers={"X-API-Key": key}, params={"limit": 1})
            assert r.status_code in (200, 429), r.text
            ok += r.status_code == 200
            windows.add(r.headers.get("x-ratelimit-reset", ""))
    return ok, windows


# ---------------------------------------------------------------- a small file system


def is_root() -> bool:
    return os.geteuid() == 0


class SmallDisk:
    """A folder whose writes can be made to fail for want of space.

    As root (CI runs as root) it is a tmpfs of ``size`` mounted on the folder; :meth:`fill`
    writes a filler file until the file system is full, then gives back ``leave`` bytes, so a
    command fails part-way with ENOSPC. Otherwise nothing is mounted and commands run with a
    per-file size limit (RLIMIT_FSIZE) instead: a write past it fails with EFBIG.
    """

    def __init__(self, path: Path, size: str = "48m") -> None:
        self.path = path
        # SOCDEF_FAULTS_NO_MOUNT=1 tries the fallback as root too
        self.root = is_root() and not os.environ.get("SOCDEF_FAULTS_NO_MOUNT")
        self.limit: int | None = None
        path.mkdir(parents=True, exist_ok=True)
        if self.root:
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True
            )

    @property
    def error_words(self) -> tuple[str, ...]:
        return ("no space left",) if self.root else ("too large",)

    def fill(self, leave: int = 96 << 10) -> None:
        if not self.root:
            self.limit = min(leave, 4096)
            return
        filler = self.path / ".filler"
        chunk = b"\0" * (1 << 20)
        with open(filler, "wb") as fh:
            with contextlib.suppress(OSError):
                while True:
                    fh.write(chunk)
                    fh.flush()
        os.truncate(filler, max(0, filler.stat().st_size - leave))

    def free(self) -> None:
        self.limit = None
        with contextlib.suppress(FileNotFoundError):
            (self.path / ".filler").unlink()

    def close(self) -> None:
        if self.root:
            subprocess.run(["umount", "-l", str(self.path)], check=False)


def run(
    *args: str,
    data_dir: Path,
    env: dict[str, str] | None = None,
    limit_file_size: int | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """``socdef ARGS --data-dir DATA_DIR`` to its end, output captured."""
    proc = spawn(*args, data_dir=data_dir, env=env, limit_file_size=limit_file_size, capture=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
