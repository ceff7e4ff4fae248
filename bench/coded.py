"""CPU of a cold request for an answer served whole: compressed in the request path, or stored
compressed by the build.

    python bench/coded.py BUILD_DIR [--rounds 5]

For the largest objects of each kind in a build (a device file, the MISP feed's hashes, the
default CSV poll, a site page), in one process, interleaved, CPU seconds (``process_time``) of:

- ``compress``: what a worker did on the first request after each build and each cache
  eviction: ``worker.encoding.Encoder`` compressing the text for a gzip client (a new encoder
  each round, so every request is cold);
- ``stored``: what it does now for a gzip client: the stored bytes read as they are;
- ``inflate``: what it does now for a client that refuses compression: the text inflated (the
  first time; the worker then keeps it in a 64 MB cache, ``worker.buckets.storage.TEXTS``).

The objects are read from the build folder's page cache first, so the rows time the CPU alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.buckets.storage import TEXTS, Build, LocalBucket  # noqa: E402
from worker.encoding import Encoder  # noqa: E402
from worker.http import Request, Response  # noqa: E402

KINDS = ("devices/", "feeds/misp/hashes.csv", "iocs/default/", "site/")


def largest(manifest: dict) -> list[str]:
    coded = manifest.get("coded") or {}
    picked = []
    for kind in KINDS:
        keys = [k for k in coded if k.startswith(kind)]
        if keys:
            picked.append(max(keys, key=lambda k: coded[k][2]))
    return picked


def cpu(run, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    root = Path(args.build_dir)
    build_id = (root / "LATEST").read_text().strip()
    manifest = json.loads((root / "builds" / f"{build_id}.json").read_bytes())
    build = Build(LocalBucket(root), manifest)
    req = Request("GET", "/", {}, {"accept-encoding": "gzip"}, "http", "-")
    print("| object | text KB | stored KB | compress ms | stored ms | inflate ms |")
    print("|---|---|---|---|---|---|")
    for key in largest(manifest):
        ref = build.objects[key]
        text = build.read(key) or b""
        build.packed(ref)  # warm the page cache

        def compress(text: bytes = text) -> None:
            resp = Response(200, text, "text/plain; charset=utf-8")
            resp.header("etag", '"x"')
            Encoder()(req, resp)

        def stored(ref=ref) -> None:
            bytes(build.packed(ref))

        def inflate(key: str = key) -> None:
            TEXTS.clear()
            build.text(key)

        ms = [cpu(f, args.rounds) * 1000 for f in (compress, stored, inflate)]
        print(
            f"| `{key}` | {len(text) / 1e3:,.0f} | {ref.packed / 1e3:,.0f} | "
            + " | ".join(f"{m:.2f}" for m in ms)
            + " |"
        )


if __name__ == "__main__":
    main()
