"""Extract indicators of compromise (IOCs) from article text.

``extract(text)`` refangs the text (``hxxp``, ``[.]``, ``[at]`` ...), finds URLs, e-mail
addresses, IPv4/IPv6 addresses, domains, MD5/SHA-1/SHA-256/SHA-512 hashes, CVE ids and
MITRE ATT&CK technique ids, validates and normalises them, and returns one
:class:`Indicator` per (type, value) in order of first appearance.

Confidence rule:

* ``high``: the indicator was written defanged, or it sits on an IOC list line or table
  cell (a unit that, with its indicators blanked out, keeps at most 3 words besides
  labels such as "sha256" or "C2", or holds at least 3 indicators and no more words than
  indicators; see :class:`generator.extract.context.ListDetector`), or it is a hash whose
  line or cell holds at least two hashes (a hash list).
* ``medium``: hashes, URLs, e-mail addresses, CVE ids and ATT&CK ids in prose.
* ``low``: plain (not defanged) domains and IP addresses in prose.

When a value occurs several times, the first context is kept together with the highest
confidence seen; ``defanged`` is true when any occurrence was defanged.

Allowlist: domains on the allowlist (``generator/data/allowlist.txt`` by default), or
subdomains of them, are never reported, except names in a zone where a provider's customers
pick the label (the Public Suffix List's private section): ``x.azurewebsites.net`` is the
customer's name and is judged by itself. URLs and e-mail addresses on allowlisted hosts
are dropped too, except when written defanged: an analyst defangs what is malicious.
``exclude_domains`` (the source's own domains) drops domains, URLs and e-mail addresses
on those domains or their subdomains, defanged or not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from generator.extract.context import ListDetector, SentenceContexts
from generator.extract.domains import allowlisted, host_in, load_allowlist, normalize_domains
from generator.extract.match import find_candidates
from generator.extract.refang import refang

__all__ = ["IOC_TYPES", "Indicator", "extract"]

IOC_TYPES = (
    "ipv4", "ipv6", "domain", "url", "md5", "sha1", "sha256", "sha512", "email", "cve",
    "mitre_attack",
)  # fmt: skip
_RANK = {"low": 0, "medium": 1, "high": 2}
_PROSE_LOW = frozenset({"domain", "ipv4", "ipv6"})
_HOSTED = frozenset({"url", "email"})
_HASHES = frozenset({"md5", "sha1", "sha256", "sha512"})
_KEEP, _ALLOWED, _DROP = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Indicator:
    """One extracted indicator."""

    type: str  # one of IOC_TYPES
    value: str  # fanged, normalised
    context: str  # sentence / table row / list line around it, at most 300 chars
    confidence: str  # "high" | "medium" | "low"
    defanged: bool  # the text showed it defanged


# ``Indicator(...)`` on a frozen dataclass sets each field through ``object.__setattr__``;
# ``_indicator`` fills the same slots through their descriptors, in half the time (one
# indicator per (type, value) of every text). It must list the fields in their order.
_SLOTS = ("type", "value", "context", "confidence", "defanged")
if tuple(f.name for f in fields(Indicator)) != _SLOTS:  # pragma: no cover - a field was added
    raise RuntimeError("_indicator must set every field of Indicator")
_set_type, _set_value, _set_context, _set_confidence, _set_defanged = (
    vars(Indicator)[name].__set__ for name in _SLOTS
)
_new = object.__new__


def _indicator(kind: str, value: str, context: str, confidence: str, defanged: bool) -> Indicator:
    """``Indicator(kind, value, context, confidence, defanged)``, built faster."""
    out: Indicator = _new(Indicator)
    _set_type(out, kind)
    _set_value(out, value)
    _set_context(out, context)
    _set_confidence(out, confidence)
    _set_defanged(out, defanged)
    return out


def _host_verdict(
    host: str, allow: frozenset[str], exclude: frozenset[str], tails: tuple[str, ...]
) -> int:
    """``_DROP`` for the source's own hosts, ``_ALLOWED`` for allowlisted ones, else ``_KEEP``.

    ``tails`` are the ``exclude`` domains with a dot in front: a host that ends in none of
    them and is none of them is no source host, without walking its parents.
    """
    if (host in exclude or host.endswith(tails)) and host_in(host, exclude):
        return _DROP
    return _ALLOWED if allowlisted(host, allow) else _KEEP


def extract(
    text: str,
    *,
    exclude_domains: Iterable[str] = (),
    allowlist: frozenset[str] | None = None,
) -> list[Indicator]:
    """Return the indicators found in ``text``, one per (type, value), first seen first."""
    if not text:
        return []
    allow = load_allowlist() if allowlist is None else normalize_domains(allowlist)
    exclude = normalize_domains(exclude_domains)
    tails = tuple(f".{domain}" for domain in exclude)
    rf = refang(text)
    candidates = find_candidates(rf)
    if not candidates:
        return []
    # A URL's address host shares the URL's span: one indicator there, for list detection.
    spans = dict.fromkeys((start, end, kind in _HASHES) for kind, _, start, end, _, _ in candidates)
    lists = ListDetector(rf.text, list(spans))
    is_list = lists.is_list
    contexts = SentenceContexts(text)
    mapped = bool(rf.new_starts)  # offsets differ from the original text's
    orig_span = rf.orig_span
    found: dict[tuple[str, str], Indicator] = {}
    hosts: dict[str, int] = {}  # host -> _KEEP, _ALLOWED or _DROP
    last_start = last_end = -1
    context = ""
    for kind, value, start, end, defanged, host in candidates:
        key = (kind, value)
        prev = found.get(key)
        if prev is not None and prev.confidence == "high" and (prev.defanged or not defanged):
            continue  # nothing this occurrence could add
        if host:
            verdict = hosts.get(host)
            if verdict is None:
                verdict = hosts[host] = _host_verdict(host, allow, exclude, tails)
            if verdict and not (verdict == _ALLOWED and kind in _HOSTED and defanged):
                continue
        if defanged or is_list(start, end, kind in _HASHES):
            confidence = "high"
        else:
            confidence = "low" if kind in _PROSE_LOW else "medium"
        if prev is None:
            if start != last_start or end != last_end:
                last_start, last_end = start, end
                if mapped:
                    orig_start, orig_end = orig_span(start, end)
                    context = contexts(orig_start, orig_end)
                else:
                    context = contexts(start, end)
            found[key] = _indicator(kind, value, context, confidence, defanged)
        elif _RANK[confidence] > _RANK[prev.confidence] or (defanged and not prev.defanged):
            best = max(confidence, prev.confidence, key=_RANK.__getitem__)
            found[key] = _indicator(kind, value, prev.context, best, prev.defanged or defanged)
    return list(found.values())
