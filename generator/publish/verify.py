"""``socdef verify``: prove that a published build is the publisher's, byte for byte.

Reads a bucket the way a consumer reaches it (a folder, ``s3://…``, or the ``https://`` origin or
CDN in front of it) and checks, against a public key the caller pins (never one read from the
bucket itself):

0. the pointer's signature, and that it does not go back from the last pointer accepted from
   this target (``worker.buckets.trust``; remembered in ``memory``), unless a build id is given;
1. the manifest's minisign signature, and that its trusted comment names this build and file
   (and that it is the manifest the signed pointer names);
2. every ``SHA256SUMS`` of the build (and its signature): the same lines the signed manifest
   gives for that download set;
3. every object the manifest names: downloaded, its size and SHA-256 compared.

Any difference is reported by name; nothing is trusted before its check passed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from generator.errors import SocdefError
from generator.publish.signing import download_sets, trusted_comment
from worker.buckets import minisign, trust
from worker.buckets.minisign import PublicKey, SignatureError
from worker.buckets.remote import open_bucket
from worker.buckets.storage import Bucket, StorageError
from worker.buckets.trust import Accepted, Memory, PointerRefused
from worker.contract import layout

Progress = Callable[[str, int, int], None]
SHOWN = 10  # problems named in the error; the count says how many more


class VerifyError(SocdefError):
    """The build is not what its signed manifest says, or cannot be read."""


@dataclass(frozen=True, slots=True)
class Report:
    build_id: str
    key_id: str
    objects: int
    bytes: int
    sums: int
    generation: int | None = None  # the signed pointer's; None when a build id was given


def load_public_key(spec: str) -> PublicKey:
    """A public key from a ``.pub`` file, or given as its base64 line (``RW…``)."""
    path = Path(spec)
    try:
        text = path.read_text() if path.is_file() else spec
        return minisign.parse_public(text)
    except (SignatureError, ValueError) as exc:
        raise VerifyError(f"{spec}: {exc}") from None


def verify(
    target: str,
    public: PublicKey,
    *,
    build_id: str | None = None,
    endpoint: str = "",
    jobs: int = 8,
    progress: Progress | None = None,
    memory: Memory | None = None,
) -> Report:
    """Check the build ``build_id``, or the one the signed pointer names; with ``memory``, the
    pointer must not go back from the last one accepted, and becomes it once all checks pass."""
    try:
        bucket = open_bucket(target, endpoint=endpoint, cache_bytes=1 << 20)
        facts = None if build_id else _signed_pointer(bucket, public, memory)
        build_id = facts.build_id if facts is not None else str(build_id)
        manifest = _signed_manifest(bucket, build_id, public, facts)
        objects: dict[str, list] = manifest["objects"]
        coded: dict[str, list] = manifest.get("coded") or {}
        sums = _check_sums(bucket, build_id, objects, public, coded)
        texts = {objects[k][0]: (c[1], c[2]) for k, c in coded.items() if k in objects}
        size = _check_objects(bucket, objects, jobs, progress, texts)
    except StorageError as exc:
        raise VerifyError(f"reading {target}: {exc}") from None
    except PointerRefused as exc:
        raise VerifyError(f"{layout.POINTER_KEY} is refused: {exc}") from None
    if facts is not None and memory is not None:
        memory.remember(facts)
    distinct = {sha for sha, _ in objects.values()}
    generation = facts.generation if facts is not None else None
    return Report(build_id, public.key_id_hex, len(distinct), size, sums, generation)


def _signed_pointer(bucket: Bucket, public: PublicKey, memory: Memory | None) -> Accepted:
    raw = bucket.get(layout.POINTER_KEY)
    if raw is None:
        raise VerifyError(f"no {layout.POINTER_KEY}: nothing is published")
    return trust.check(bucket, raw, public, memory.last() if memory is not None else None)


def _signed(bucket: Bucket, key: str, public: PublicKey, build_id: str) -> bytes:
    """The bytes at ``key`` once its signature checked out and names this build and key."""
    data, signature = bucket.get(key), bucket.get(key + layout.SIGNATURE_SUFFIX)
    if data is None:
        raise VerifyError(f"{key} is missing")
    if signature is None:
        raise VerifyError(f"{key} is not signed ({key}{layout.SIGNATURE_SUFFIX} is missing)")
    try:
        comment = minisign.verify(public, data, signature.decode("utf-8", "replace"))
    except SignatureError as exc:
        raise VerifyError(f"{key}: {exc}") from None
    if comment != trusted_comment(build_id, key):
        raise VerifyError(f"{key}: its signature is for another file ({comment!r})")
    return data


def _signed_manifest(
    bucket: Bucket, build_id: str, public: PublicKey, facts: Accepted | None
) -> dict[str, Any]:
    raw = _signed(bucket, layout.manifest_key(build_id), public, build_id)
    if facts is not None:
        trust.check_manifest(facts, raw)
    manifest = json.loads(raw)
    if manifest.get("build_id") != build_id:
        raise VerifyError(f"the signed manifest is of build {manifest.get('build_id')!r}")
    return cast("dict[str, Any]", manifest)


def _check_sums(
    bucket: Bucket, build_id: str, objects: dict[str, list], public: PublicKey, coded: dict
) -> int:
    expected = download_sets(objects, coded)
    for prefix, text in expected.items():
        key = layout.sums_key(build_id, prefix)
        if _signed(bucket, key, public, build_id) != text:
            raise VerifyError(f"{key} does not list what the signed manifest holds")
    return len(expected)


def _check_objects(
    bucket: Bucket,
    objects: dict[str, list],
    jobs: int,
    progress: Progress | None,
    texts: dict[str, tuple[str, int]],
) -> int:
    """Every object against its hash; an object stored compressed may come back as its text
    (an HTTP bucket decodes ``Content-Encoding: gzip``), checked against the text's hash."""
    wanted = sorted({(sha, size) for sha, size in objects.values()})

    def check(item: tuple[str, int]) -> str | None:
        sha, size = item
        data = bucket.get(layout.object_key(sha))
        if data is None:
            return f"{layout.object_key(sha)} is missing"
        digest = hashlib.sha256(data).hexdigest()
        if sha in texts and texts[sha] == (digest, len(data)):
            return None  # the text of a compressed object, decoded by the bucket
        if len(data) != size or digest != sha:
            return f"{layout.object_key(sha)} does not match its hash in the manifest"
        return None

    problems = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for done, problem in enumerate(pool.map(check, wanted), 1):
            if problem:
                problems.append(problem)
            if progress and (done % 64 == 0 or done == len(wanted)):
                progress("verify", done, len(wanted))
    if problems:
        more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
        raise VerifyError(
            f"{len(problems)} of {len(wanted)} objects fail: " + "; ".join(problems[:SHOWN]) + more
        )
    return sum(size for _, size in wanted)
