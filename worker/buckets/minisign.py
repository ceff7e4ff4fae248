"""Checking Ed25519 signatures in minisign's format (what ``minisign -Vm FILE -p KEY`` checks).

minisign (https://jedisct1.github.io/minisign/) files, all base64 under one comment line:

- public key: ``"Ed" || key id (8 bytes) || Ed25519 public key (32)``;
- signature: ``"ED" || key id || Ed25519(BLAKE2b-512(file))`` (minisign's pre-hashed mode), then
  a ``trusted comment:`` line and the global signature ``Ed25519(signature || trusted comment)``,
  which binds the comment (we put the build id there) to the file.

The publisher signs (``generator.publish.minisign``); the worker checks the bucket's pointer
with the public key it is given and ``socdef verify`` checks everything, both through this
module. Ed25519 itself comes from ``cryptography`` (OpenSSL), imported only where a signature
is checked: the worker imports this module only when a public key is configured.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PUBLIC_COMMENT = "untrusted comment: minisign public key "
TRUSTED = "trusted comment: "


class SignatureError(ValueError):
    """A key or signature file that is not minisign's, or a signature that does not verify."""


@dataclass(frozen=True, slots=True)
class PublicKey:
    key_id: bytes  # 8 bytes; minisign shows it as 16 hex digits, most significant first
    key: Ed25519PublicKey

    @property
    def key_id_hex(self) -> str:
        return self.key_id[::-1].hex().upper()

    def encoded(self) -> str:
        """The base64 line of the public key file (what ``minisign -P`` takes)."""
        return base64.b64encode(b"Ed" + self.key_id + self.key.public_bytes_raw()).decode()

    def file_text(self) -> str:
        return f"{PUBLIC_COMMENT}{self.key_id_hex}\n{self.encoded()}\n"


def payload(text: str, what: str) -> bytes:
    """The decoded key line of a minisign file (the line after its comment, or the only one)."""
    lines = [line.strip() for line in text.strip().splitlines()]
    try:
        line = (
            lines[1] if len(lines) >= 2 and lines[0].startswith("untrusted comment:") else lines[0]
        )
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError, IndexError):
        raise SignatureError(f"not a minisign {what}: its key line is not base64") from None


def parse_public(text: str) -> PublicKey:
    """A public key from its file's text, or from the bare base64 line (``RW…``)."""
    raw = payload(text, "public key")
    if len(raw) != 42 or raw[:2] != b"Ed":
        raise SignatureError("not a minisign Ed25519 public key")
    return PublicKey(raw[2:10], Ed25519PublicKey.from_public_bytes(raw[10:]))


def verify(public: PublicKey, data: bytes, signature_text: str) -> str:
    """Check a ``.minisig`` over ``data``; answer its trusted comment, or raise SignatureError."""
    lines = signature_text.strip("\n").split("\n")
    if len(lines) != 4 or not lines[2].startswith(TRUSTED):
        raise SignatureError("not a minisign signature file (four lines expected)")
    raw = payload("\n".join(lines[:2]), "signature")
    if len(raw) != 74 or raw[:2] not in (b"ED", b"Ed"):
        raise SignatureError("not a minisign Ed25519 signature")
    if raw[2:10] != public.key_id:
        raise SignatureError(
            f"signed by key {raw[2:10][::-1].hex().upper()}, not by {public.key_id_hex}"
        )
    message = hashlib.blake2b(data, digest_size=64).digest() if raw[:2] == b"ED" else data
    comment = lines[2][len(TRUSTED) :]
    try:
        public.key.verify(raw[10:], message)
        public.key.verify(payload(lines[3], "signature"), raw[10:] + comment.encode())
    except InvalidSignature:
        raise SignatureError("the signature does not match: the file was changed") from None
    return comment
