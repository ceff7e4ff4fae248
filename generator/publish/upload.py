"""Publish: copy a build into a bucket and switch the pointer to it.

Order makes the switch atomic for readers: first every object the bucket lacks (objects are
content-addressed, so an object already there is never sent again), then the build's manifest,
then the one small pointer ``current.json``. Until the pointer moves, readers keep the old build
whole; afterwards they see the new one whole. Re-running an interrupted publish skips what
already arrived. Old builds beyond ``keep`` are removed after the switch, together with the
objects no kept build references.

What the bucket already holds comes from one listing of ``objects/`` (paginated on S3), not one
request per object. Uploads run on a small thread pool. The pointer is replaced with a
compare-and-swap on the version read at the start, so two publishes racing each other cannot
both win: the later one fails with :class:`PointerMoved` and changes nothing readers see.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from generator.publish import signing
from generator.publish.folder import Destination, LocalDestination, PointerMoved, PublishError
from generator.publish.headers import IMMUTABLE, SHORT, content_encodings, content_types
from generator.publish.minisign import SecretKey
from generator.publish.signing import SIG
from generator.store import bucket as store_bucket
from generator.store import lifecycle
from generator.store.generations import Store
from worker.contract import changes as changes_contract
from worker.contract import coded, layout
from worker.contract import taxii_common as tc
from worker.contract.taxii_epochs import appended

__all__ = [
    "Destination",
    "LocalDestination",
    "PointerMoved",
    "PublishError",
    "PublishResult",
    "open_destination",
    "publish",
    "IMMUTABLE",
    "SHORT",
]

Progress = Callable[[str, int, int], None]
_URL_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")  # s3:/x, s3:x, https:/x; not a drive letter
MIN_KEEP = 2  # the build readers may still hold while the pointer moves is never pruned


@dataclass(frozen=True, slots=True)
class PublishResult:
    build_id: str
    uploaded: int
    skipped: int
    removed: int
    uploaded_bytes: int = 0
    signed_by: str | None = None  # the signing key's id
    store: store_bucket.StoreUpload | None = None


def open_destination(
    target: str | os.PathLike[str], *, endpoint_url: str | None = None
) -> Destination:
    """``s3://BUCKET/PREFIX`` (boto3, loaded only then) or a folder.

    Anything that starts like a URL (``scheme:``, two letters or more) and is not
    ``s3://BUCKET/...`` is refused rather than taken for a folder named ``s3:``.
    """
    text = os.fspath(target)
    if not text.strip():
        raise PublishError(
            "cannot publish to an empty destination: use s3://BUCKET/PREFIX or a folder"
        )
    if text.startswith("s3://"):
        from generator.publish.s3 import S3Destination

        return S3Destination.from_url(text, endpoint_url=endpoint_url)
    if "://" in text or _URL_LIKE.match(text):
        raise PublishError(
            f"cannot publish to {text}: use s3://BUCKET/PREFIX or a folder "
            "(prefix a folder whose name has a colon with ./)"
        )
    return LocalDestination(text)


def latest_build(build_dir: Path) -> str:
    try:
        return (build_dir / "LATEST").read_text().strip()
    except FileNotFoundError:
        raise PublishError(f"no build found in {build_dir}; run `socdef build` first") from None


def publish(
    build_dir: str | os.PathLike[str],
    dest: Destination,
    *,
    build_id: str | None = None,
    keep: int = 3,
    jobs: int = 8,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
    taxii_grace: float = 40.0,
    signer: SecretKey | None = None,
    store: Store | None = None,
    store_dest: Destination | None = None,
    keep_stores: int = store_bucket.KEEP_STORES,
) -> PublishResult:
    """Publish ``build_id`` (the latest build); with ``signer``, signed (docs/publish.md); with
    ``store``, also its live generation to ``store_dest`` (default: ``dest``), whose pointer
    switches after the build's (``generator.store.bucket``)."""
    src = Path(build_dir)
    build_id = build_id or latest_build(src)
    if isinstance(dest, LocalDestination):  # what a killed publish left behind
        dest.remove_stale_temporary()
    manifest_raw = _read(src / layout.manifest_key(build_id))
    manifest = json.loads(manifest_raw)
    pointer, version = dest.get_versioned(layout.POINTER_KEY)
    _history_of(pointer)  # a damaged pointer stops the publish before anything is sent
    plan = None if store is None else store_bucket.prepare(store, store_dest or dest)
    present = dest.sizes("objects/")
    wanted = _wanted(manifest["objects"])
    missing = {key: size for key, size in wanted.items() if present.get(key) != size}
    codings = content_encodings(manifest) if dest.encodes else {}
    types = content_types(manifest["objects"])
    sent = _upload(src, dest, missing, (types, codings), jobs, progress)
    for key, data, content_type in signing.extras(
        build_id, manifest_raw, manifest["objects"], signer, manifest.get("coded")
    ):
        dest.put(key, data, content_type=content_type, cache_control=IMMUTABLE)
    if signer is not None:
        public = signer.public.file_text().encode()
        dest.put(layout.SIGNING_KEY_OBJECT, public, content_type=SIG, cache_control=SHORT)
    state = _changes_state(src, build_id)
    if state is not None:  # for the next build on a machine without this build folder
        key = changes_contract.published_state_key(build_id)
        packed = gzip.compress(state, compresslevel=6, mtime=0)
        _put(dest, key, packed, "application/gzip", IMMUTABLE)
    ledger = _ledger_beside(src, build_id)
    if ledger is not None:  # for the next build on a machine without this data folder
        packed = gzip.compress(ledger, compresslevel=6, mtime=0)
        _put(dest, lifecycle.published_ledger_key(build_id), packed, "application/gzip", IMMUTABLE)
    _put(dest, layout.manifest_key(build_id), manifest_raw, "application/json", IMMUTABLE)
    stored = None if plan is None else store_bucket.upload(plan, jobs=jobs, progress=progress)
    visible = _taxii_epochs(src, manifest, pointer, clock(), taxii_grace)
    facts = {"generated_at": manifest["generated_at"], "manifest_sha256": _sha256(manifest_raw)}
    history, written = _switch(
        dest, build_id, facts, pointer, version, keep, clock, visible, signer
    )
    if plan is not None and stored is not None:
        stored = store_bucket.switch(plan, stored, keep=keep_stores, clock=clock)
    removed = _prune(dest, history, {**present, **missing})
    _prune_pointer_signatures(dest, (written, pointer))
    signed_by = signer.public.key_id_hex if signer is not None else None
    skipped = len(wanted) - len(missing)
    return PublishResult(build_id, len(missing), skipped, removed, sent, signed_by, stored)


def _changes_state(src: Path, build_id: str) -> bytes | None:
    """The change state build ``build_id`` left in the build folder (docs/changes.md)."""
    try:
        sha = (src / changes_contract.state_pointer(build_id)).read_text().strip()
        data = (src / layout.object_key(sha)).read_bytes()
    except (OSError, ValueError):
        return None
    return data if hashlib.sha256(data).hexdigest() == sha else None


def _ledger_beside(src: Path, build_id: str) -> bytes | None:
    """The lifecycle ledger build ``build_id`` left beside it (docs/lifecycle.md); None when
    the build folder's ledger belongs to another build or cannot be read."""
    try:
        beside = json.loads((src / lifecycle.LEDGER_BESIDE_BUILD).read_bytes())
        if beside["build_id"] != build_id:
            return None
        return json.dumps(beside["ledger"], separators=(",", ":")).encode()
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _wanted(objects: dict[str, list]) -> dict[str, int]:
    return {layout.object_key(sha): size for sha, size in objects.values()}


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PublishError(f"build is incomplete: {path} is missing") from None


def _upload(
    src: Path,
    dest: Destination,
    missing: dict[str, int],
    metadata: tuple[dict[str, str], dict[str, str]],
    jobs: int,
    progress: Progress | None,
) -> int:
    """Send every missing object on ``jobs`` threads; the first failure stops the rest.
    ``metadata``: object key → Content-Type, and → Content-Encoding of a compressed one."""
    types, codings = metadata
    if progress:
        progress("upload", 0, len(missing))
    if not missing:
        return 0

    def send(key: str) -> int:
        data = _read(src / key)
        dest.put(
            key,
            data,
            content_type=types.get(key, "application/octet-stream"),
            cache_control=IMMUTABLE,
            content_encoding=codings.get(key),
        )
        return len(data)

    sent = 0
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="publish") as pool:
        pending: set[Future[int]] = {pool.submit(send, key) for key in sorted(missing)}
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                exc = future.exception()
                if exc is not None:
                    for rest in pending:
                        rest.cancel()
                    raise exc
                sent += future.result()
            if progress:
                progress("upload", len(missing) - len(pending), len(missing))
    return sent


def _put(dest: Destination, key: str, data: bytes, content_type: str, cache_control: str) -> None:
    """Write one whole object; large JSON is stored gzip-compressed where the bucket can say so."""
    if dest.encodes and len(data) > 1024:
        dest.put(
            key,
            gzip.compress(data, mtime=0),
            content_type=content_type,
            cache_control=cache_control,
            content_encoding="gzip",
        )
    else:
        dest.put(key, data, content_type=content_type, cache_control=cache_control)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _switch(
    dest: Destination,
    build_id: str,
    facts: dict[str, object],
    old: bytes | None,
    version: str | None,
    keep: int,
    clock: Callable[[], float],
    taxii_epochs: list[list[int]] | None = None,
    signer: SecretKey | None = None,
) -> tuple[list[str], bytes]:
    """Write the new pointer (its signature first, with a signer); answer the builds it keeps
    and its bytes. ``facts``: the build's ``generated_at`` and ``manifest_sha256``."""
    history = _history_of(old)
    history = [build_id] + [b for b in history if b != build_id]
    history = history[: max(MIN_KEEP, keep)]
    pointer = {
        "build_id": build_id,
        **facts,
        "generation": _generation_of(old) + 1,
        "published_at": int(clock()),
        "history": history,
    }
    if taxii_epochs:
        pointer["taxii_epochs"] = taxii_epochs
    raw = json.dumps(pointer, sort_keys=True).encode()
    if signer is not None:
        key, signature = signing.pointer_signature(signer, raw, pointer)
        dest.put(key, signature, content_type=SIG, cache_control=IMMUTABLE)
    dest.swap(
        layout.POINTER_KEY, raw, version, content_type="application/json", cache_control=SHORT
    )
    return history, raw


def _generation_of(pointer: bytes | None) -> int:
    """The generation of the pointer being replaced: 0 without one, or for a pointer written
    before pointers were numbered."""
    generation = json.loads(pointer).get("generation", 0) if pointer else 0
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
        raise PublishError(
            f"the bucket's pointer {layout.POINTER_KEY} is damaged (its generation "
            f"{generation!r} is not a whole number); fix or delete it, then publish again"
        )
    return generation


def _prune_pointer_signatures(dest: Destination, kept: tuple[bytes | None, ...]) -> int:
    """Remove the signatures of every pointer but the new one and the one it replaced (a
    reader may have read that one just before the switch)."""
    keep = {layout.pointer_signature_key(_sha256(raw)) for raw in kept if raw is not None}
    stale = sorted(k for k in dest.sizes(layout.POINTER_SIGNATURES) if k not in keep)
    return dest.delete_many(stale)


def _taxii_epochs(
    src: Path, manifest: dict, pointer: bytes | None, now: float, grace: float
) -> list[list[int]] | None:
    """The pointer's TAXII epochs after this publish (worker/contract/taxii_epochs.py): the build date of
    the build's last object and when readers start serving it, a whole second at least
    ``grace`` seconds from now (every worker has read the pointer by then). A grace of 0
    serves it at once (the last whole second), without that guarantee."""
    entry = manifest["objects"].get(tc.collection_key(tc.ALL_COLLECTION, "meta.json"))
    if entry is None:
        return None
    raw = _read(src / layout.object_key(entry[0]))
    if tc.collection_key(tc.ALL_COLLECTION, "meta.json") in (manifest.get("coded") or {}):
        raw = coded.decompress(raw)  # stored compressed (worker/contract/coded.py)
    last = json.loads(raw).get("last", -1)
    old = json.loads(pointer).get("taxii_epochs") if pointer else None
    visible_at = math.ceil(now + grace) if grace > 0 else math.floor(now)
    return appended(old, last, visible_at * 1_000_000)


def _history_of(pointer: bytes | None) -> list[str]:
    """The builds a pointer keeps (none without a pointer); a damaged pointer is an error: the
    builds it kept are unknown, and pruning without them could delete a build still served."""
    try:
        history = json.loads(pointer).get("history", []) if pointer else []
        if isinstance(history, list) and all(isinstance(b, str) for b in history):
            return history
    except (ValueError, AttributeError):
        pass
    raise PublishError(
        f"the bucket's pointer {layout.POINTER_KEY} is damaged (not a JSON object "
        "with a history list); fix or delete it, then publish again"
    )


def _prune(dest: Destination, history: list[str], objects: dict[str, int]) -> int:
    """Remove manifests outside ``history`` and the objects no kept manifest references.

    ``objects`` is what this publish saw in the bucket plus what it sent: an object another
    publish uploads meanwhile is never touched.
    """
    kept = {layout.manifest_key(b) for b in history}
    live: set[str] = set()
    for key in kept:
        raw = dest.get(key)
        if raw is not None:  # a kept build whose manifest is gone is unreadable anyway
            live.update(_wanted(json.loads(raw)["objects"]))
    beside = tuple(f"builds/{b}{end}" for b in history for end in (".json.", "/"))
    stale = sorted(k for k in dest.sizes("builds/") if k not in kept and not k.startswith(beside))
    removed = dest.delete_many(stale)
    return removed + dest.delete_many(sorted(k for k in objects if k not in live))
