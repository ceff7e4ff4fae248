"""Warninglists compiled for the build: is an indicator a known false positive or a known
identifier? (docs/lifecycle.md)

The lists are MISP's warninglists as ``pymispwarninglists`` bundles them (read offline from the
installed package), socdef's own list (``generator/data/warninglists/socdef.json``) and an
operator's overrides (``allow``/``block`` entries, :func:`parse_overrides`). What a hit on each
list does is data: ``generator/data/warninglists.toml`` (suppress, annotate or ignore, with a
reason). ``pymispwarninglists``'s own search scans its lists one by one; here every list is
compiled once into structures that answer in well under a microsecond:

- exact values (``string`` lists) in one dict per kind of value: host, URL, e-mail, hash;
- host names and suffixes (``hostname`` lists, ``.name`` entries and the host-name entries of
  ``substring`` lists) in one dict, walked label by label from the full host up, stopping at a
  private public suffix (``github.io``: the names under it are anyone's, judged one by one);
- CIDR blocks (``cidr`` lists) as sorted disjoint ranges of integers per IP version, each range
  labelled with the lists that cover it, found by bisection;
- ``regex`` lists compiled (MISP's ``/…/flags`` syntax).

Each distinct set of lists is one interned :class:`Hit`, so a lookup answers a shared object.
"""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import tomllib
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from generator.errors import SocdefError
from generator.extract.domains import private_suffixes

SUPPRESS, ANNOTATE, IGNORE = "suppress", "annotate", "ignore"
ALLOW_LIST, BLOCK_LIST = "operator-allow", "operator-block"
HASH_TYPES = frozenset({"md5", "sha1", "sha256", "sha512"})
# MISP attribute types → the socdef indicator types a list applies to
_APPLIES = {
    "ip-src": ("ipv4", "ipv6"),
    "ip-dst": ("ipv4", "ipv6"),
    "domain|ip": ("ipv4", "ipv6", "domain"),
    "domain": ("domain",),
    "hostname": ("domain",),
    "url": ("url",),
    "uri": ("url",),
    "email": ("email",),
    "email-src": ("email",),
    "email-dst": ("email",),
    "target-email": ("email",),
    "whois-registrant-email": ("email",),
    "md5": ("md5",),
    "sha1": ("sha1",),
    "sha256": ("sha256",),
    "sha512": ("sha512",),
}
_HOSTISH = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)+\Z")


class WarninglistError(SocdefError, ValueError):
    """A warninglist, the policy table or an overrides file cannot be read."""


@dataclass(frozen=True, slots=True)
class Policy:
    action: str  # suppress | annotate | ignore
    url: str  # what a hit on a URL's host does
    reason: str


@dataclass(frozen=True, slots=True)
class Hit:
    """The lists one value is on (sorted names), and whether any of them suppresses it."""

    lists: tuple[str, ...]
    suppress: bool  # as a host, address, hash or e-mail
    suppress_url: bool  # as the host of a URL
    allow: bool  # an operator's allow entry
    block: bool  # an operator's block entry


@dataclass(slots=True)
class _Source:
    name: str
    kind: str  # string | hostname | substring | cidr | regex | auto
    entries: list[str]
    types: frozenset[str]


@dataclass(slots=True)
class _Ranges:
    """Sorted disjoint integer ranges, each labelled with the lists covering it."""

    blocks: list[tuple[int, int, int]] = field(default_factory=list)  # (first, last, list)
    starts: list[int] = field(default_factory=list)
    hits: list[Hit | None] = field(default_factory=list)

    def compile(self, intern: _Interner) -> None:
        edges = sorted({b[0] for b in self.blocks} | {b[1] + 1 for b in self.blocks})
        starts: list[int] = []
        hits: list[Hit | None] = []
        opens: dict[int, list[int]] = {}
        closes: dict[int, list[int]] = {}
        for first, last, source in self.blocks:
            opens.setdefault(first, []).append(source)
            closes.setdefault(last + 1, []).append(source)
        active: dict[int, int] = {}
        for edge in edges:
            for source in closes.get(edge, ()):
                active[source] -= 1
                if not active[source]:
                    del active[source]
            for source in opens.get(edge, ()):
                active[source] = active.get(source, 0) + 1
            hit = intern.hit(frozenset(active)) if active else None
            if hits and hits[-1] is hit:
                continue
            starts.append(edge)
            hits.append(hit)
        self.starts, self.hits, self.blocks = starts, hits, []

    def find(self, number: int) -> Hit | None:
        i = bisect_right(self.starts, number) - 1
        return self.hits[i] if i >= 0 else None


class _Interner:
    """One :class:`Hit` per distinct set of lists."""

    def __init__(self, names: list[str], policies: dict[str, Policy]) -> None:
        self.names = names
        self.policies = policies
        self.made: dict[frozenset[int], Hit] = {}
        self.merged: dict[tuple[Hit, Hit], Hit] = {}
        self.index = {name: i for i, name in enumerate(names)}

    def hit(self, sources: frozenset[int]) -> Hit:
        made = self.made.get(sources)
        if made is None:
            names = tuple(sorted(self.names[s] for s in sources))
            actions = [self.policies[n] for n in names if n not in (ALLOW_LIST, BLOCK_LIST)]
            made = self.made[sources] = Hit(
                names,
                any(p.action == SUPPRESS for p in actions),
                any(p.url == SUPPRESS for p in actions),
                ALLOW_LIST in names,
                BLOCK_LIST in names,
            )
        return made

    def merge(self, a: Hit | None, b: Hit | None) -> Hit | None:
        if a is None or a is b:
            return b
        if b is None:
            return a
        merged = self.merged.get((a, b))
        if merged is None:
            merged = self.merged[(a, b)] = self.hit(
                frozenset(self.index[n] for n in a.lists + b.lists)
            )
        return merged


def _ip_number(value: str) -> int | None:
    try:
        if ":" in value:
            return int.from_bytes(socket.inet_pton(socket.AF_INET6, value), "big")
        return int.from_bytes(socket.inet_aton(value), "big") if value.count(".") == 3 else None
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return None


def _regex(pattern: str) -> re.Pattern[str]:
    """MISP's ``/body/flags`` (or a bare body) as a Python pattern."""
    flags = 0
    if pattern.startswith("/") and pattern.rfind("/") > 0:
        end = pattern.rfind("/")
        flags = re.IGNORECASE if "i" in pattern[end + 1 :] else 0
        pattern = pattern[1:end]
    return re.compile(pattern, flags)


class Warninglists:
    """The compiled lists; :meth:`check` answers the :class:`Hit` of one indicator or None."""

    def __init__(self, sources: list[_Source], policies: dict[str, Policy]) -> None:
        names = [s.name for s in sources]
        self.policies = policies
        self._intern = _Interner(names, policies)
        build: dict[str, dict[str, set[int]]] = {
            k: {} for k in ("host", "suffix", "url", "email", "email_suffix", "hash")
        }
        v4, v6 = _Ranges(), _Ranges()
        self._regexes: list[tuple[re.Pattern[str], Hit]] = []
        for number, source in enumerate(sources):
            self._add(number, source, build, v4, v6)
        maps = {k: self._compile(v) for k, v in build.items()}
        self._host, self._suffix, self._url = maps["host"], maps["suffix"], maps["url"]
        self._email, self._email_suffix, self._hash = (
            maps["email"],
            maps["email_suffix"],
            maps["hash"],
        )
        v4.compile(self._intern)
        v6.compile(self._intern)
        self._v4, self._v6 = v4, v6
        self._private = private_suffixes()
        self._annotations: dict[Hit, Hit | None] = {}

    def _compile(self, table: dict[str, set[int]]) -> dict[str, Hit]:
        return {key: self._intern.hit(frozenset(s)) for key, s in table.items()}

    def _add(
        self,
        number: int,
        source: _Source,
        build: dict[str, dict[str, set[int]]],
        v4: _Ranges,
        v6: _Ranges,
    ) -> None:
        types = source.types
        hosts = bool(types & {"domain", "url"})
        for raw in source.entries:
            entry = raw.strip().lower() if source.kind != "regex" else raw.strip()
            if not entry:
                continue
            if source.kind == "regex":
                self._regexes.append((_regex(entry), self._intern.hit(frozenset({number}))))
                continue
            block = _network(entry) if source.kind in ("cidr", "auto", "substring") else None
            if block is not None:
                first, last, six = block
                (v6 if six else v4).blocks.append((first, last, number))
                continue
            if source.kind == "cidr":
                continue
            self._add_value(number, source, entry, build, hosts)

    def _add_value(
        self,
        number: int,
        source: _Source,
        entry: str,
        build: dict[str, dict[str, set[int]]],
        hosts: bool,
    ) -> None:
        types = source.types
        suffix = (
            source.kind == "hostname"
            or entry.startswith(("*.", "."))
            or (source.kind == "substring" and _HOSTISH.match(entry) is not None)
        )
        name = entry.removeprefix("*.").removeprefix(".")
        if suffix:
            if hosts:
                build["suffix"].setdefault(name, set()).add(number)
            if "email" in types:
                build["email_suffix"].setdefault(name, set()).add(number)
            return
        if hosts and "@" not in entry and "/" not in entry:
            build["host"].setdefault(entry, set()).add(number)
        if "url" in types and "://" in entry:
            build["url"].setdefault(entry, set()).add(number)
        if "email" in types and "@" in entry:
            build["email"].setdefault(entry, set()).add(number)
        if types & HASH_TYPES:
            build["hash"].setdefault(entry, set()).add(number)

    # -- lookups ---------------------------------------------------------------------------

    def host(self, host: str) -> Hit | None:
        """The lists naming ``host`` exactly or as a suffix. From a private public suffix up
        (``github.io`` for ``someone.github.io``), a list only annotates: the names under it
        are anyone's, so a ranking of the provider says nothing of them."""
        merge = self._intern.merge
        hit = merge(self._host.get(host), self._suffix.get(host))
        suffix, private = self._suffix, self._private
        crossed = False
        dot = host.find(".")
        while dot != -1:
            parent = host[dot + 1 :]
            crossed = crossed or parent in private
            found = suffix.get(parent)
            if found is not None:
                hit = merge(hit, self._annotating(found) if crossed else found)
            dot = host.find(".", dot + 1)
        return hit

    def _annotating(self, hit: Hit) -> Hit | None:
        """The annotating lists of ``hit`` (None when it has none)."""
        if hit not in self._annotations:
            kept = [n for n in hit.lists if self.policies[n].action == ANNOTATE]
            index = self._intern.index
            self._annotations[hit] = (
                self._intern.hit(frozenset(index[n] for n in kept)) if kept else None
            )
        return self._annotations[hit]

    def ip(self, value: str) -> Hit | None:
        number = _ip_number(value)
        if number is None:
            return None
        return (self._v6 if ":" in value else self._v4).find(number)

    def url(self, value: str) -> Hit | None:
        host = _url_host(value)
        exact = self._url.get(value.lower())
        if not host:
            return exact
        on_host = self.ip(host.strip("[]")) if _looks_ip(host) else self.host(host)
        if on_host is not None:
            on_host = self._as_url(on_host)
        return self._intern.merge(exact, on_host)

    def _as_url(self, hit: Hit) -> Hit:
        """A host's hit as the hit of a URL on that host: suppressing only by the lists whose
        ``url`` action suppresses."""
        return Hit(hit.lists, hit.suppress_url, hit.suppress_url, hit.allow, hit.block)

    def email(self, value: str) -> Hit | None:
        value = value.lower()
        hit = self._email.get(value)
        domain = value.rpartition("@")[2]
        suffix = self._email_suffix
        while domain:
            hit = self._intern.merge(hit, suffix.get(domain))
            domain = domain.partition(".")[2]
        for pattern, found in self._regexes:
            if pattern.search(value):
                hit = self._intern.merge(hit, found)
        return hit

    def check(self, type_: str, value: str) -> Hit | None:
        """The lists ``value`` (an indicator of ``type_``, normalised) is on, or None."""
        if type_ in HASH_TYPES:
            return self._hash.get(value)
        if type_ == "domain":
            return self.host(value)
        if type_ == "ipv4" or type_ == "ipv6":
            return self.ip(value)
        if type_ == "url":
            return self.url(value)
        if type_ == "email":
            return self.email(value)
        return None

    def check_many(self, indicators: Iterable[tuple[str, str]]) -> list[Hit | None]:
        """:meth:`check` of each (type, value), in order: grouped by type, so that each group
        runs one tight loop (a hash is one dict lookup; an address one parse and bisection)."""
        pairs = list(indicators)
        groups: dict[str, list[int]] = {}
        for i, (type_, _) in enumerate(pairs):
            groups.setdefault(type_, []).append(i)
        out: list[Hit | None] = [None] * len(pairs)
        for type_, places in groups.items():
            values = [pairs[i][1] for i in places]
            for i, hit in zip(places, self._group(type_, values), strict=True):
                if hit is not None:
                    out[i] = hit
        return out

    def _group(self, type_: str, values: list[str]) -> list[Hit | None]:
        if type_ in HASH_TYPES:
            get = self._hash.get
            return [get(v) for v in values]
        if type_ == "ipv4":
            aton, find, start, ip = socket.inet_aton, self._v4.find, int.from_bytes, self.ip
            try:  # inet_aton also reads "10.1" (10.0.0.1): only dotted quads go this way
                return [find(start(aton(v), "big")) if v.count(".") == 3 else ip(v) for v in values]
            except (OSError, ValueError):  # not all addresses: one at a time
                return [self.ip(v) for v in values]
        if type_ == "domain":
            host = self.host
            return [host(v) for v in values]
        check = self.check
        return [check(type_, v) for v in values]


def _network(entry: str) -> tuple[int, int, bool] | None:
    """(first, last, is IPv6) of an address or CIDR block; None for anything else."""
    head, _, length = entry.partition("/")
    number = _ip_number(head)
    if number is None:
        return None
    bits = 128 if ":" in head else 32
    if length and not (length.isdigit() and int(length) <= bits):
        return None
    span = 1 << (bits - int(length)) if length else 1
    first = number & ~(span - 1)
    return first, first + span - 1, bits == 128


def _looks_ip(host: str) -> bool:
    return host.startswith("[") or host.replace(".", "").isdigit()


def _url_host(url: str) -> str:
    """The host of a URL, lowercase, without port or credentials ("" when there is none)."""
    start = url.find("://")
    rest = url[start + 3 :] if start != -1 else url
    for stop in "/?#":
        cut = rest.find(stop)
        if cut != -1:
            rest = rest[:cut]
    rest = rest.rpartition("@")[2]
    if rest.startswith("["):
        return rest[: rest.find("]") + 1].lower()
    return rest.partition(":")[0].lower()


# -- loading -------------------------------------------------------------------------------


@cache
def policies() -> dict[str, Policy]:
    """The action of each list (``generator/data/warninglists.toml``)."""
    data = resources.files("generator").joinpath("data/warninglists.toml").read_text("utf-8")
    table = tomllib.loads(data)["lists"]
    out = {}
    for name, row in table.items():
        action, url = row["action"], row.get("url", ANNOTATE)
        if action not in (SUPPRESS, ANNOTATE, IGNORE) or url not in (SUPPRESS, ANNOTATE):
            raise WarninglistError(f"warninglists.toml: {name}: unknown action")
        out[name] = Policy(action, url, row["reason"])
    return out


def misp_lists_dir() -> Path:
    """Where the installed ``pymispwarninglists`` keeps its bundled lists (found without
    importing it: its import alone takes seconds, and its search is not used)."""
    spec = importlib.util.find_spec("pymispwarninglists")
    if spec is None or not spec.submodule_search_locations:
        raise WarninglistError("pymispwarninglists is not installed (pip install socdef)")
    root = Path(list(spec.submodule_search_locations)[0])
    return root / "data" / "misp-warninglists" / "lists"


def _read_source(name: str, path: Path) -> _Source:
    data = json.loads(path.read_text("utf-8"))
    types = {t for a in data.get("matching_attributes", ()) for t in _APPLIES.get(a, ())}
    return _Source(name, data["type"], [str(e) for e in data["list"]], frozenset(types))


def bundled_sources(table: dict[str, Policy]) -> Iterator[_Source]:
    """MISP's lists not ignored by ``table``, by name, then socdef's own list."""
    for folder in sorted(misp_lists_dir().iterdir()):
        policy = table.get(folder.name)
        if (policy is None or policy.action != IGNORE) and (folder / "list.json").is_file():
            yield _read_source(folder.name, folder / "list.json")
    own = resources.files("generator").joinpath("data/warninglists/socdef.json")
    yield _read_source("socdef", Path(str(own)))


ALL_TYPES = frozenset({"ipv4", "ipv6", "domain", "url", "email", *HASH_TYPES})


def parse_overrides(text: str, origin: str = "overrides") -> tuple[list[str], list[str]]:
    """An overrides file: one ``allow VALUE`` or ``block VALUE`` a line, ``#`` comments.

    VALUE is an indicator as socdef writes it (an address, a domain, a URL, an e-mail, a
    hash), a CIDR block, or ``*.domain`` for a domain and every name under it. Every bad line
    is reported at once."""
    allow: list[str] = []
    block: list[str] = []
    problems = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.partition("#")[0].strip()
        if not line:
            continue
        verb, _, value = line.partition(" ")
        value = value.strip()
        if verb not in ("allow", "block") or not value or " " in value:
            problems.append(f"{origin}:{number}: expected 'allow VALUE' or 'block VALUE'")
            continue
        (allow if verb == "allow" else block).append(value)
    if problems:
        raise WarninglistError("; ".join(problems))
    return allow, block


def load(overrides: str | Path | None = None) -> Warninglists:
    """The bundled lists (as the policy table says) plus an operator's overrides file."""
    if overrides is None:
        return load_text(None)
    path = Path(overrides)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise WarninglistError(f"cannot read the overrides file {path}: {exc}") from exc
    return load_text(text, str(path))


def load_text(text: str | None, origin: str = "overrides") -> Warninglists:
    """The bundled lists plus the overrides ``text`` (the format of :func:`parse_overrides`)."""
    table = dict(policies())
    sources = list(bundled_sources(table))
    for source in sources:
        table.setdefault(source.name, Policy(ANNOTATE, ANNOTATE, "not in the policy table"))
    if text is not None:
        allow, block = parse_overrides(text, origin)
        sources.append(_Source(ALLOW_LIST, "auto", allow, ALL_TYPES))
        sources.append(_Source(BLOCK_LIST, "auto", block, ALL_TYPES))
        for name in (ALLOW_LIST, BLOCK_LIST):
            table[name] = Policy(ANNOTATE, ANNOTATE, "the operator's overrides file")
    return Warninglists(sources, table)


@cache
def bundled() -> Warninglists:
    """The bundled lists without overrides, compiled once per process."""
    return load()
