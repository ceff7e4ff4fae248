"""The signed pointer: accept a bucket's ``current.json`` only when the publisher signed it and
it does not go back (docs/publish.md, "The signed pointer").

Publish writes, beside each pointer, its minisign signature at
``layout.pointer_signature_key(sha256 of the pointer's bytes)``; the pointer carries
``generation`` (one more than the pointer it replaced), ``generated_at``, ``build_id`` and
``manifest_sha256``, and the trusted comment repeats the first three. A reader that pins the
public key (the worker with ``--public-key``, ``socdef verify``) refuses a pointer

- without a signature, or whose signature does not verify under the pinned key;
- whose trusted comment does not name its own generation, build and ``generated_at``;
- older than the last one it accepted: a lower generation, an earlier ``generated_at``, or the
  same generation with other bytes (a replayed older pointer and build verify otherwise);
- whose manifest is not the bytes ``manifest_sha256`` names.

The last accepted pointer is kept in a small JSON file (one entry per bucket), so a restart
does not forget it. This module imports ``cryptography``: the worker loads it only when a public
key is configured.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from worker.buckets import minisign
from worker.buckets.minisign import PublicKey
from worker.contract import layout


class Bucket(Protocol):
    """What is read here: ``get`` of ``worker.buckets.storage.Bucket``."""

    def get(self, key: str) -> bytes | None: ...


class PointerRefused(ValueError):
    """A pointer that is not signed by the pinned key, or that goes back."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """What a reader remembers of the last pointer it accepted."""

    generation: int
    generated_at: int
    build_id: str
    sha256: str  # of the pointer's bytes
    manifest_sha256: str = ""


def trusted_comment(generation: int, build_id: str, generated_at: int) -> str:
    return f"socdef pointer generation {generation} build {build_id} generated_at {generated_at}"


def described(raw: bytes) -> Accepted:
    """The signed facts of a pointer's bytes; PointerRefused when one is missing."""
    try:
        pointer = json.loads(raw)
        facts = Accepted(
            pointer["generation"],
            pointer["generated_at"],
            pointer["build_id"],
            hashlib.sha256(raw).hexdigest(),
            pointer["manifest_sha256"],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise PointerRefused(f"it is not a signed pointer ({exc!r} missing or wrong)") from None
    if not all(
        isinstance(v, int) and not isinstance(v, bool)
        for v in (facts.generation, facts.generated_at)
    ):
        raise PointerRefused("its generation and generated_at are not whole numbers")
    if not isinstance(facts.build_id, str) or not isinstance(facts.manifest_sha256, str):
        raise PointerRefused("its build_id and manifest_sha256 are not strings")
    return facts


def goes_back(facts: Accepted, last: Accepted | None) -> str | None:
    """Why ``facts`` is older than ``last`` (the pointer accepted before), or None."""
    if last is None:
        return None
    if facts.generation < last.generation:
        return f"generation {facts.generation} comes after generation {last.generation}"
    if facts.generation == last.generation and facts.sha256 != last.sha256:
        return f"generation {facts.generation} was already accepted with other bytes"
    if facts.generated_at < last.generated_at:
        return (
            f"build {facts.build_id} was generated at {facts.generated_at}, before the "
            f"{last.generated_at} of build {last.build_id} already accepted"
        )
    return None


def check(bucket: Bucket, raw: bytes, public: PublicKey, last: Accepted | None) -> Accepted:
    """The facts of the pointer ``raw`` once its signature and order checked out, else
    PointerRefused naming why."""
    facts = described(raw)
    signature = bucket.get(layout.pointer_signature_key(facts.sha256))
    if signature is None:
        raise PointerRefused(
            f"it is not signed ({layout.pointer_signature_key(facts.sha256)} is missing)"
        )
    try:
        comment = minisign.verify(public, raw, signature.decode("utf-8", "replace"))
    except minisign.SignatureError as exc:
        raise PointerRefused(f"its signature: {exc}") from None
    if comment != trusted_comment(facts.generation, facts.build_id, facts.generated_at):
        raise PointerRefused(f"its signature is for another pointer ({comment!r})")
    why = goes_back(facts, last)
    if why is not None:
        raise PointerRefused(f"it goes back: {why} (an older pointer replayed?)")
    return facts


def check_manifest(facts: Accepted, manifest: bytes) -> None:
    if hashlib.sha256(manifest).hexdigest() != facts.manifest_sha256:
        raise PointerRefused(
            f"the manifest of build {facts.build_id} is not the one the signed pointer names"
        )


class Memory:
    """The last accepted pointer of each bucket, in a JSON file written whole (temporary file,
    then rename); several processes may share it, and it only ever moves forward."""

    def __init__(self, path: Path, bucket: str) -> None:
        self.path, self.bucket = path, bucket
        self._lock = threading.Lock()

    def _entries(self) -> dict[str, dict[str, object]]:
        try:
            entries = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError:
            raise PointerRefused(
                f"{self.path} is damaged; delete it to accept the bucket's pointer afresh"
            ) from None
        return entries if isinstance(entries, dict) else {}

    def last(self) -> Accepted | None:
        entry = self._entries().get(self.bucket)
        try:
            return Accepted(**entry) if isinstance(entry, dict) else None  # type: ignore[arg-type]
        except TypeError:
            return None

    def remember(self, facts: Accepted) -> None:
        with self._lock:
            entries = self._entries()
            known = self.last()
            if known is not None and goes_back(facts, known) is not None:
                return  # another process accepted a newer one meanwhile
            entries[self.bucket] = asdict(facts)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(
                f".{self.path.name}.{os.getpid()}.{threading.get_ident()}"
            )
            partial.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
            os.replace(partial, self.path)


class PointerTrust:
    """The worker's check of each new pointer (``BuildSource(trust=…)``): its facts are
    remembered only once the build it names loaded (``accepted``)."""

    def __init__(self, public: PublicKey, memory: Memory) -> None:
        self.public, self.memory = public, memory
        self.last = memory.last()

    def check(self, bucket: Bucket, raw: bytes) -> Accepted:
        if self.last is not None and hashlib.sha256(raw).hexdigest() == self.last.sha256:
            return self.last  # the pointer accepted last time: nothing to check again
        return check(bucket, raw, self.public, self.last)

    def accepted(self, facts: Accepted) -> None:
        if facts != self.last:
            self.memory.remember(facts)
            self.last = facts
