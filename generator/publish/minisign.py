"""Ed25519 signatures in minisign's format, so ``minisign -Vm FILE -p KEY`` checks what we sign;
checking them (and the public key) is ``worker.buckets.minisign``'s.

minisign (https://jedisct1.github.io/minisign/) files, all base64 under one comment line:

- public key: ``"Ed" || key id (8 bytes) || Ed25519 public key (32)``;
- secret key: ``"Ed" || kdf ("\\0\\0": not encrypted) || "B2" || salt (32) || opslimit (8) ||
  memlimit (8) || key id || Ed25519 secret key (seed 32 || public 32) || BLAKE2b-256 checksum of
  "Ed" || key id || secret key`` — minisign can sign with it too (``minisign -S -s KEY``);
- signature: ``"ED" || key id || Ed25519(BLAKE2b-512(file))`` (minisign's pre-hashed mode), then
  a ``trusted comment:`` line and the global signature ``Ed25519(signature || trusted comment)``,
  which binds the comment (we put the build id there) to the file.

Ed25519 itself comes from ``cryptography`` (OpenSSL).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from generator.errors import SocdefError
from worker.buckets import minisign as checking
from worker.buckets.minisign import TRUSTED, PublicKey, parse_public, payload, verify

__all__ = ["PublicKey", "SecretKey", "SignatureError", "TRUSTED", "parse_public", "sign", "verify"]

SECRET_COMMENT = "untrusted comment: socdef signing secret key (never publish this file)"
SIGNATURE_COMMENT = "untrusted comment: signature from socdef secret key"
_SECRET_LENGTH = 2 + 2 + 2 + 32 + 8 + 8 + 8 + 64 + 32


class SignatureError(SocdefError, checking.SignatureError):
    """A key file that is not minisign's, or one kept where others can read it."""


@dataclass(frozen=True, slots=True)
class SecretKey:
    key_id: bytes
    key: Ed25519PrivateKey

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.key_id, self.key.public_key())

    def file_text(self) -> str:
        raw = self.key.private_bytes_raw() + self.key.public_key().public_bytes_raw()
        checksum = hashlib.blake2b(b"Ed" + self.key_id + raw, digest_size=32).digest()
        body = b"Ed\0\0B2" + bytes(48) + self.key_id + raw + checksum
        return f"{SECRET_COMMENT}\n{base64.b64encode(body).decode()}\n"


def generate() -> SecretKey:
    return SecretKey(secrets.token_bytes(8), Ed25519PrivateKey.generate())


def parse_secret(text: str) -> SecretKey:
    try:
        raw = payload(text, "secret key")
    except checking.SignatureError as exc:
        raise SignatureError(str(exc)) from None
    if len(raw) != _SECRET_LENGTH or raw[:6] != b"Ed\0\0B2":
        raise SignatureError("not an unencrypted minisign Ed25519 secret key")
    key_id, secret, checksum = raw[54:62], raw[62:126], raw[126:]
    if hashlib.blake2b(b"Ed" + key_id + secret, digest_size=32).digest() != checksum:
        raise SignatureError("the secret key's checksum does not match: the file is damaged")
    return SecretKey(key_id, Ed25519PrivateKey.from_private_bytes(secret[:32]))


def sign(secret: SecretKey, data: bytes, trusted_comment: str) -> str:
    """The ``.minisig`` text for ``data`` (pre-hashed); ``trusted_comment`` is one line."""
    if "\n" in trusted_comment or "\r" in trusted_comment:
        raise SignatureError("a trusted comment is one line")
    signature = secret.key.sign(hashlib.blake2b(data, digest_size=64).digest())
    global_signature = secret.key.sign(signature + trusted_comment.encode())
    return (
        f"{SIGNATURE_COMMENT}\n{base64.b64encode(b'ED' + secret.key_id + signature).decode()}\n"
        f"{TRUSTED}{trusted_comment}\n{base64.b64encode(global_signature).decode()}\n"
    )


def write_key_pair(secret_path: Path, public_path: Path, *, force: bool = False) -> SecretKey:
    """A new key pair: the secret key created owner-only (0600) before a byte is written, never
    over an existing one unless ``force``; the public key beside it (0644)."""
    if secret_path.exists() and not force:
        raise SignatureError(
            f"{secret_path} already exists; keep it (rotating the key breaks every verifier's "
            "pinned public key) or pass --force"
        )
    secret = generate()
    secret_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = secret_path.with_name(f".{secret_path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret.file_text())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, secret_path)
    public_path.write_text(secret.public.file_text())
    public_path.chmod(0o644)
    return secret


def read_secret(path: Path) -> SecretKey:
    """The signing key at ``path``; refused when others may read it (it must stay 0600)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError:
        raise SignatureError(
            f"no signing key at {path}; create one with `socdef keys signing-init`"
        ) from None
    if mode & 0o077:
        raise SignatureError(
            f"{path} is readable by others (mode {mode & 0o777:o}); chmod 600 it first"
        )
    return parse_secret(text)
