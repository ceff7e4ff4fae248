"""medallion 3.0.0 (the OASIS TAXII 2.1 reference server) on 127.0.0.1, loaded with our objects.

Its memory backend reads one JSON file: discovery, an API root and one collection holding the
objects and their manifest records (``date_added`` copied from ours). Discovery names the
server's own URL, so the data can only be written once the port is known. Run as a program
(``python -m tests.medallion_server FOLDER [--gunicorn]``), this module binds port 0 itself,
writes the data and configuration into FOLDER with the port it got, prints
``listening on http://127.0.0.1:PORT`` and serves medallion's app on that socket: with
werkzeug's threaded server (what medallion's own command line runs) or, with ``--gunicorn``,
under gunicorn (one sync worker, handed the socket as ``fd://N``). No other program can take the
port in between. ``Medallion`` starts it and reads the line; used by
``tests/test_taxii_medallion.py`` and ``bench/taxii.py``. medallion installs into the project's
environment (it asks only for Flask, Flask-HTTPAuth, pytz and six); gunicorn is in the
``bench`` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import LISTENING, announced, wait_http

USER, PASSWORD = "admin", "Password0"
ROOT = "api1"
INPUT = "medallion-input.json"  # the collection, objects, manifest and page size to serve
REPO = Path(__file__).resolve().parent.parent


def medallion_data(port: int, collection: dict, objects: list[dict], manifest: list[dict]) -> dict:
    base = f"http://127.0.0.1:{port}/{ROOT}/"
    return {
        "/discovery": {
            "title": "medallion",
            "description": "reference",
            "default": base,
            "api_roots": [base],
        },
        ROOT: {
            "information": {
                "title": "reference",
                "description": "reference",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 9_765_625,
            },
            "status": [],
            "collections": [{**collection, "objects": objects, "manifest": manifest}],
        },
    }


def write_config(folder: Path, port: int) -> Path:
    """medallion's data file and configuration for a server on ``port``, from ``INPUT``."""
    given = json.loads((folder / INPUT).read_text())
    data, config = folder / "medallion-data.json", folder / "medallion-config.json"
    data.write_text(
        json.dumps(medallion_data(port, given["collection"], given["objects"], given["manifest"]))
    )
    backend = {
        "module": "medallion.backends.memory_backend",
        "module_class": "MemoryBackend",
        "filename": str(data),
    }
    config.write_text(
        json.dumps(
            {
                "backend": backend,
                "users": {USER: PASSWORD},
                "taxii": {"max_page_size": given["page_size"]},
            }
        )
    )
    return config


class Medallion:
    """A medallion process serving ``objects`` in one collection shaped like ``collection``;
    ``gunicorn``: under gunicorn (one sync worker) instead of werkzeug's development server."""

    def __init__(
        self,
        folder: Path,
        collection: dict,
        objects: list[dict],
        manifest: list[dict],
        *,
        page_size: int = 100,
        gunicorn: bool = False,
    ):
        folder.mkdir(parents=True, exist_ok=True)
        given = {"collection": collection, "objects": objects, "manifest": manifest}
        (folder / INPUT).write_text(json.dumps({**given, "page_size": page_size}))
        log_path = folder / "medallion.log"
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.medallion_server", str(folder)]
                + (["--gunicorn"] if gunicorn else []),
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self.url = announced(log_path, self.proc, LISTENING).group(1)
            self.discovery = f"{self.url}/taxii2/"
            wait_http(self.discovery, self.proc)  # 401 without credentials: it answers
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def serve(folder: Path, gunicorn: bool) -> None:
    """Bind port 0, write the data for the port bound, name it, serve on the same socket."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = write_config(folder, port)
    print(f"listening on http://127.0.0.1:{port}", flush=True)  # connections queue meanwhile
    if gunicorn:
        os.set_inheritable(sock.fileno(), True)
        os.execv(
            sys.executable,
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "1",
                "--timeout",
                "3600",
                "--bind",
                f"fd://{sock.fileno()}",
                "--log-level",
                "warning",
                f"medallion:load_app({str(config)!r})",
            ],
        )
    from medallion import load_app
    from werkzeug.serving import make_server

    app = load_app(str(config))
    make_server("127.0.0.1", port, app, threaded=True, fd=sock.fileno()).serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="medallion on a port it binds itself")
    parser.add_argument("folder", type=Path, help=f"holds {INPUT}; gets the data and config")
    parser.add_argument("--gunicorn", action="store_true", help="under gunicorn, 1 sync worker")
    args = parser.parse_args()
    serve(args.folder, args.gunicorn)
