"""What publish adds beside a build so a reader can prove where its bytes came from.

The build tree stays a pure function of the store and ``--now``: nothing here is written into
it. At publish time, from the build's manifest alone:

- one ``SHA256SUMS`` per download set (``layout.download_set``), in ``sha256sum``'s format
  (``<hex>  <name>``, names relative to the set, sorted), at ``layout.sums_key``;
- with a signing key, a minisign signature of the manifest (``layout.signature_key``) and of
  each ``SHA256SUMS`` (``….minisig``), and the public key at the bucket's root
  (``layout.SIGNING_KEY_OBJECT``).

The manifest maps every logical key to the SHA-256 and size of its bytes, so its signature
covers every object of the build; a trusted comment names the build and the signed file, so a
signature cannot be moved onto another build's manifest.

The pointer is signed too (``pointer_signature``), right before it is switched: it names the
build, its ``generated_at``, the manifest's SHA-256 and a ``generation`` one above the pointer
it replaces, so a reader can refuse an older signed pointer replayed by a bucket or a CDN
(``worker.buckets.trust``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from generator.publish.minisign import SecretKey, sign
from worker.buckets import trust
from worker.contract import layout

Extra = tuple[str, bytes, str]  # key, bytes, content type


def download_sets(
    objects: Mapping[str, Sequence[object]], coded: Mapping[str, Sequence[object]] | None = None
) -> dict[str, bytes]:
    """``SHA256SUMS`` text per download set of a manifest's ``objects``: the hash of what a
    download holds, the text of an object stored compressed (the manifest's ``coded``)."""
    lines: dict[str, list[str]] = {}
    for key in sorted(objects):
        prefix = layout.download_set(key)
        if prefix is not None:
            sha = coded[key][1] if coded and key in coded else objects[key][0]
            lines.setdefault(prefix, []).append(f"{sha}  {key[len(prefix) :]}\n")
    return {prefix: "".join(rows).encode() for prefix, rows in lines.items()}


def trusted_comment(build_id: str, key: str) -> str:
    return f"socdef build {build_id} file {key}"


def extras(
    build_id: str,
    manifest_raw: bytes,
    objects: Mapping[str, Sequence[object]],
    signer: SecretKey | None,
    coded: Mapping[str, Sequence[object]] | None = None,
) -> list[Extra]:
    """The objects to write beside the build, the manifest's signature last."""
    out: list[Extra] = []
    for prefix, text in download_sets(objects, coded).items():
        key = layout.sums_key(build_id, prefix)
        out.append((key, text, "text/plain; charset=utf-8"))
        if signer is not None:
            out.append((key + layout.SIGNATURE_SUFFIX, _sig(signer, build_id, key, text), SIG))
    if signer is not None:
        key = layout.manifest_key(build_id)
        out.append((layout.signature_key(build_id), _sig(signer, build_id, key, manifest_raw), SIG))
    return out


SIG = "text/plain; charset=utf-8"


def _sig(signer: SecretKey, build_id: str, key: str, data: bytes) -> bytes:
    return sign(signer, data, trusted_comment(build_id, key)).encode()


def pointer_signature(
    signer: SecretKey, raw: bytes, pointer: Mapping[str, object]
) -> tuple[str, bytes]:
    """(key, ``.minisig`` bytes) of the signature of the pointer ``raw`` (whose fields are
    ``pointer``); the trusted comment names its generation, build and ``generated_at``."""
    comment = trust.trusted_comment(
        int(str(pointer["generation"])),
        str(pointer["build_id"]),
        int(str(pointer["generated_at"])),
    )
    key = layout.pointer_signature_key(hashlib.sha256(raw).hexdigest())
    return key, sign(signer, raw, comment).encode()
