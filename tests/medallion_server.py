"""medallion 3.0.0 (the OASIS TAXII 2.1 reference server) on 127.0.0.1, loaded with our objects.

Its memory backend reads one JSON file: discovery, an API root and one collection holding the
objects and their manifest records (``date_added`` copied from ours). It runs from its own
command line as a subprocess; used by ``tests/test_taxii_medallion.py`` and ``bench/taxii.py``.
medallion installs into the project's environment (it asks only for Flask, Flask-HTTPAuth,
pytz and six); ``python`` may name another interpreter that has it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

USER, PASSWORD = "admin", "Password0"
ROOT = "api1"
RUN = "from medallion.scripts.run import main; main()"


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


class Medallion:
    """A medallion process serving ``objects`` in one collection shaped like ``collection``."""

    def __init__(
        self,
        folder: Path,
        port: int,
        collection: dict,
        objects: list[dict],
        manifest: list[dict],
        *,
        page_size: int = 100,
        python: str = sys.executable,
    ):
        data, config = folder / "medallion-data.json", folder / "medallion-config.json"
        data.write_text(json.dumps(medallion_data(port, collection, objects, manifest)))
        config.write_text(
            json.dumps(
                {
                    "backend": {
                        "module": "medallion.backends.memory_backend",
                        "module_class": "MemoryBackend",
                        "filename": str(data),
                    },
                    "users": {USER: PASSWORD},
                    "taxii": {"max_page_size": page_size},
                }
            )
        )
        self.log = open(folder / "medallion.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [python, "-c", RUN, "--host", "127.0.0.1", "--port", str(port), str(config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{port}"
        self.discovery = f"{self.url}/taxii2/"
        self._wait()

    def _wait(self) -> None:
        for _ in range(300):
            if self.proc.poll() is not None:
                raise RuntimeError(f"medallion exited ({self.proc.returncode})")
            try:
                httpx.get(
                    self.discovery,
                    auth=(USER, PASSWORD),
                    timeout=1,
                    headers={"Accept": "application/taxii+json;version=2.1"},
                )
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("medallion did not answer")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
