"""The generator's errors: one ``SocdefError`` root; the command line prints it as one line and
exits 1, and anything else (a bug) keeps its traceback."""

from __future__ import annotations

import ast
import errno
import importlib
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from generator.errors import (
    CorruptFile,
    MissingFile,
    SocdefError,
    StorageError,
    on_disk,
    os_failure,
)
from generator.store.generations import Store
from tests.conftest import ROOT

PACKAGES = ("generator", "exports")


def exception_classes() -> list[tuple[str, str]]:
    """(module, class) for every public class of generator/ and exports/ whose bases name an
    exception (``…Error``, ``…Exception``, ``OSError`` and the like, or another such class)."""
    found: list[tuple[str, str]] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for node in tree.body:
                if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                    continue
                bases = [ast.unparse(b) for b in node.bases]
                if any(b.endswith(("Error", "Exception", "Refused", "Database")) for b in bases):
                    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                    found.append((module, node.name))
    return found


def test_the_scan_finds_the_known_classes():
    names = {name for _module, name in exception_classes()}
    assert {"SettingsError", "PublishError", "FetchError", "CorruptDatabase"} <= names


@pytest.mark.parametrize(("module", "name"), exception_classes())
def test_every_generator_exception_is_a_socdef_error(module, name):
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, SocdefError), f"{module}.{name} is not under SocdefError"


def test_the_root_is_a_click_exception_and_keeps_the_builtin_bases():
    from generator.publish.folder import PublishError
    from generator.settings import SettingsError
    from generator.sources.fetch import FetchError

    assert issubclass(SocdefError, click.ClickException)
    assert issubclass(SettingsError, ValueError) and issubclass(FetchError, OSError)
    assert issubclass(PublishError, RuntimeError)
    assert issubclass(MissingFile, FileNotFoundError) and issubclass(CorruptFile, ValueError)
    error = FetchError("feed gone", status=410)
    assert str(error) == "feed gone" and error.exit_code == 1 and error.status == 410


def test_an_os_error_names_the_file_the_reason_and_what_to_do():
    full = os_failure("building", OSError(errno.ENOSPC, "No space left on device", "/d/build/x"))
    assert isinstance(full, StorageError)
    assert str(full) == (
        "building failed at /d/build/x: No space left on device: free some space and run it again"
    )
    denied = os_failure("writing", PermissionError(errno.EACCES, "Permission denied", "/d/s"))
    assert "/d/s" in str(denied) and "permissions" in str(denied)
    unnamed = os_failure("publishing", OSError(errno.ENOSPC, "No space left on device"))
    assert str(unnamed).startswith("publishing failed: No space left on device: free")


def test_on_disk_wraps_os_errors_only():
    with pytest.raises(StorageError, match="publishing failed at /b/k"), on_disk("publishing"):
        raise OSError(errno.EIO, "Input/output error", "/b/k")
    with pytest.raises(KeyError), on_disk("publishing"):  # a bug stays what it is
        raise KeyError("x")
    original = MissingFile("no build")
    with pytest.raises(MissingFile) as info, on_disk("publishing"):
        raise original
    assert info.value is original


def test_a_truncated_store_file_is_a_corrupt_file_naming_it(tmp_path):
    store = Store(tmp_path / "store")
    store.init()
    generation = store.generation()
    assert generation is not None
    table = generation / "articles.parquet"
    table.write_bytes(table.read_bytes()[:20])
    with pytest.raises(CorruptFile, match="articles.parquet"):
        store.articles()


def cli_with(patch: str, *args: str, env: dict[str, str] | None = None):
    """``socdef ARGS`` in a child whose ``generator.runtime`` is patched by ``patch`` first."""
    code = "\n".join(
        ["import sys", "from generator import runtime", patch]
        + ["from generator.cli import main", "main(sys.argv[1:])"]
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def raising(expression: str) -> str:
    return f"def failing(*a, **k):\n    raise {expression}\nruntime.run_build = failing"


def test_a_socdef_error_is_one_line_and_exit_1(tmp_path):
    patch = "from generator.errors import StorageError\n" + raising(
        'StorageError("building failed at /x/build: No space left on device")'
    )
    result = cli_with(patch, "build", "--init", "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "Error: building failed at /x/build: No space left on device"
    ]


def test_socdef_debug_shows_the_traceback_of_a_socdef_error(tmp_path):
    patch = "from generator.errors import StorageError\n" + raising('StorageError("disk full")')
    result = cli_with(
        patch, "build", "--init", "--data-dir", str(tmp_path / "d"), env={"SOCDEF_DEBUG": "1"}
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "StorageError: disk full" in result.stderr


@pytest.mark.parametrize(
    "expression", ['KeyError("article_id")', 'ValueError("bad")', 'OSError(5, "I/O error")']
)
def test_an_unexpected_exception_keeps_its_traceback(tmp_path, expression):
    result = cli_with(raising(expression), "build", "--init", "--data-dir", str(tmp_path / "d"))
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert not any(line.startswith("Error: ") for line in result.stderr.splitlines())
    assert expression.split("(")[0] in result.stderr.splitlines()[-1]
    assert "failing" in result.stderr  # the frame that raised is shown


def test_usage_errors_still_exit_2(tmp_path):
    result = cli_with("", "build", "--no-such-flag")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_the_store_path_is_named_when_the_build_cannot_read_it(tmp_path):
    data = tmp_path / "d"
    store = Store(data / "store")
    store.init()
    generation = store.generation()
    assert generation is not None
    (generation / "sightings.parquet").write_bytes(b"PAR1 not really")
    result = cli_with("", "build", "--data-dir", str(data))
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: the store file ") and "sightings.parquet" in line
    assert str(Path(generation)) in line


def test_a_value_the_key_store_refuses_is_one_line(tmp_path):
    result = cli_with("", "keys", "create", "--user", "two words", "--data-dir", str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "Error: user must be an e-mail address or account id without spaces"
    ]


@pytest.mark.parametrize(
    ("raised", "expected"),
    [(OSError(errno.ENOSPC, "No space left on device"), True), (KeyError("day"), False)],
)
def test_the_second_build_process_fails_as_expected_only_on_an_expected_failure(
    tmp_path, monkeypatch, raised, expected
):
    from generator.build import tree as build_module
    from tests.buildseries import make_store

    def failing(*_: object) -> None:
        raise raised

    monkeypatch.setattr(build_module, "_second_lane", failing)  # the forked child runs it
    store = make_store(tmp_path / "store", 300)
    with pytest.raises(RuntimeError) as info:
        build_module.build(store, tmp_path / "build", processes=2)
    assert str(info.value).startswith("the second build process failed: ")
    assert isinstance(info.value, SocdefError) is expected  # a bug keeps its traceback
    assert "Traceback" in "".join(getattr(info.value, "__notes__", []))


def test_a_damaged_store_state_is_one_line_naming_it(tmp_path):
    data = tmp_path / "d"
    store = Store(data / "store")
    store.init()
    generation = store.generation()
    assert generation is not None
    (generation / "state.json").write_text('{"as_of": ')
    result = cli_with("", "sources", "--data-dir", str(data))
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: the store file ") and "state.json" in line


def test_site_without_a_build_or_with_a_damaged_manifest_is_one_line(tmp_path):
    data = tmp_path / "d"
    out = str(tmp_path / "out")
    result = cli_with("", "site", "--out", out, "--data-dir", str(data))
    assert result.returncode == 1 and result.stderr.splitlines() == [
        f"Error: no build in {data / 'build'}: run socdef build first"
    ], result.stderr
    (data / "build" / "b1").mkdir(parents=True)
    (data / "build" / "LATEST").write_text("b1")
    from worker.contract import layout

    manifest = data / "build" / layout.manifest_key("b1")
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text("{")
    result = cli_with("", "site", "--out", out, "--data-dir", str(data))
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: the build manifest {manifest} is damaged")
