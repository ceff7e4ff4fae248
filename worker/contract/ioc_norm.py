"""The normal form of an indicator value, and the hash that search shards are keyed by.

The build keys every record by ``search_hash(normalise(value))``; the worker looks a query up
by the same two functions, so a query finds a record whenever both normalise to the same text.
Values the extractor stores are already normal (it refangs and normalises them), and normalising
them again changes nothing (tested), so a client of the range API may hash a value exactly as
the feed shows it.

A query is first refanged (``hxxp``/``hXXps``/``fxp`` schemes; ``[.]``, ``(.)``, ``{.}``,
``[dot]``, ``(dot)``, ``\\.`` and `` dot ``; ``[@]``, ``(@)``, ``[at]``, ``(at)`` and `` at ``;
``[:]``, ``[://]``, ``[/]``), then put in the form the extractor writes for its shape:

========================  ==============================================================
shape                     normal form
========================  ==============================================================
IPv4 / IPv6 (``[…]`` ok)  :mod:`ipaddress`'s compressed text (``2001:DB8:0::1`` → ``2001:db8::1``)
MD5/SHA-1/SHA-256/SHA-512 lowercase hex
CVE id                    ``CVE-YYYY-NNNN`` (any dash, any case)
ATT&CK technique          ``T1059`` / ``T1059.001``
URL (``scheme://…``)      scheme and host lowercase, IPv6 host compressed; path kept as written
e-mail address            lowercase
anything else (domains)   lowercase, without a trailing dot
========================  ==============================================================

Only the standard library is used: the worker stays light.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

__all__ = ["normalise", "refang_query", "search_hash"]

_SCHEME = re.compile(r"^(?:hxxp|fxp)(s?)(?=\s*[\[({]?\s*:)", re.IGNORECASE)
_DOT = re.compile(r"\s*[\[({]\s*(?:\.|dot)\s*[\])}]\s*|\\\.", re.IGNORECASE)
_AT = re.compile(r"\s*[\[({]\s*(?:@|at)\s*[\])}]\s*", re.IGNORECASE)
_SEP = re.compile(r"[\[({]\s*://\s*[\])}]|[\[({]\s*:\s*[\])}](?://)?")
_SLASH = re.compile(r"\[\s*/\s*\]")
_WORD_DOT = re.compile(r"\s+dot\s+", re.IGNORECASE)
_WORD_AT = re.compile(r"\s+at\s+", re.IGNORECASE)
_CVE = re.compile(r"cve[-‐‑–—](\d{4})[-‐‑–—](\d{4,7})", re.IGNORECASE)
_ATTACK = re.compile(r"t(1\d{3}(?:\.\d{3})?)", re.IGNORECASE)
_HEX = re.compile(r"[0-9a-fA-F]+")
_HASH_LENGTHS = frozenset({32, 40, 64, 128})
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)", re.DOTALL)
_DOTTED_DIGITS = re.compile(r"[0-9.]+")
_MARKS = re.compile(r"[\[({\\\s]|^(?:hxxp|fxp)", re.IGNORECASE)
_IP_LIKE = re.compile(r"\[?[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*\]?")


def refang_query(text: str) -> str:
    """Undo the common defang marks in one indicator as an analyst would type it."""
    text = text.strip()
    if not _MARKS.search(text):
        return text
    text = _SCHEME.sub(
        lambda m: ("http" if m.group()[:1] in "hH" else "ftp") + m.group(1).lower(), text.strip()
    )
    text = _SEP.sub(lambda m: "://" if "//" in m.group() else ":", text)
    text = _SLASH.sub("/", _AT.sub("@", _DOT.sub(".", text)))
    if " " in text or "\t" in text:
        text = _WORD_AT.sub("@", _WORD_DOT.sub(".", text))
    return text.strip()


def _ip(text: str) -> str | None:
    if not _IP_LIKE.fullmatch(text):
        return None
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return ipaddress.ip_address(inner).compressed
    except ValueError:
        return None


def _url_host(hostport: str) -> str:
    if hostport.startswith("["):
        inner, sep, rest = hostport[1:].partition("]")
        ip = _ip(inner) if sep else None
        return f"[{ip}]{rest}" if ip and ":" in ip else hostport
    host, colon, port = hostport.partition(":")
    host = host.lower().rstrip(".")
    if _DOTTED_DIGITS.fullmatch(host):
        host = _ip(host) or host
    return host + colon + port


def _url(scheme: str, rest: str) -> str:
    split = min((p for p in (rest.find(c) for c in "/?#") if p != -1), default=len(rest))
    userinfo, at, hostport = rest[:split].rpartition("@")
    return f"{scheme.lower()}://{userinfo}{at}{_url_host(hostport)}{rest[split:]}"


def normalise(query: str) -> str:
    """The normal form of one indicator value (see the module docstring)."""
    text = refang_query(query)
    if (cve := _CVE.fullmatch(text)) is not None:
        return f"CVE-{cve.group(1)}-{cve.group(2)}"
    if (attack := _ATTACK.fullmatch(text)) is not None:
        return "T" + attack.group(1)
    if len(text) in _HASH_LENGTHS and _HEX.fullmatch(text):
        return text.lower()
    if (ip := _ip(text)) is not None:
        return ip
    if (url := _URL.fullmatch(text)) is not None:
        return _url(url.group(1), url.group(2))
    if "@" in text:
        return text.lower()
    return text.lower().rstrip(".")


def search_hash(normal: str) -> str:
    """Lowercase hex SHA-256 of the UTF-8 normal form: the key of search shards and ranges."""
    return hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()
