"""Domain validation for the indicator extractor: public suffixes, false-positive filters,
the benign-domain allowlist and host matching.

A domain is accepted when it ends in an ICANN public suffix known to the bundled Public
Suffix List (``publicsuffixlist`` ships it, no network is used) and has a registrable
label in front of it. Standalone domains written plainly (not defanged) are further
checked against the false-positive filters below; an analyst's defanging overrides them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from publicsuffixlist import PSLFILE

__all__ = [
    "CODE_FIRST_LABELS",
    "allowlisted",
    "is_tld",
    "DETECTION_WORDS",
    "FILE_EXTENSION_TLDS",
    "ALT_ROOTS",
    "alt_root_domain",
    "host_in",
    "is_valid_domain",
    "load_allowlist",
    "redacted",
    "normalize_domains",
    "private_suffixes",
    "standalone_domain_ok",
]

# Real TLDs that are far more often file extensions in security articles
# (loader.sh, libs.zip, notes.md, update.py, run.pl, libfoo.so, Payload.app, ...).
# A plain token ending in one of these is taken as a file name; a defanged one
# (evil[.]zip) is still a domain. Multi-label suffixes such as com.py are not affected.
FILE_EXTENSION_TLDS = frozenset(
    {
        "app", "cab", "map", "md", "mov", "one", "pl", "pm", "properties", "ps", "pub",
        "py", "rs", "run", "sh", "so", "zip",
    }
)  # fmt: skip

# Alternative roots outside the DNS that malware reports name as C2 hosts: Namecoin's
# ``.bit`` (resolved by the malware itself or by Namecoin-aware resolvers). They are not in
# the Public Suffix List, so they are taken only when written defanged (``carder[.]bit``):
# a plain ``design.bit`` is far more often an FPGA bitstream file. ``.onion`` needs no
# entry: the list's ICANN section holds it as a special-use name.
ALT_ROOTS = frozenset({"bit"})

# Labels that mark an antivirus detection name (Trojan.Agent.ET, HEUR:Trojan.Win32.Generic).
DETECTION_WORDS = frozenset(
    {
        "adware", "agent", "andr", "backdoor", "behavior", "dropper",
        "downloader", "exploit", "gen", "generic", "hacktool", "heur", "heuristic",
        "malware", "msil", "osx", "pua", "pup", "ransom", "ransomware",
        "riskware", "rootkit", "script", "spyware", "trojan", "trojandownloader",
        "trojandropper", "trojanspy", "variant", "virtool", "virus", "w32", "w64",
        "win32", "win64", "worm",
    }
)  # fmt: skip

# First labels of reverse-DNS package names (com.example.app, org.apache.commons).
_REVERSE_DNS_FIRST = frozenset(
    {"com", "org", "net", "edu", "gov", "mil", "io", "java", "javax", "android", "androidx",
     "kotlin", "system"}
)  # fmt: skip
# First labels of two-label code expressions (window.top, document.domain, self.name).
_CODE_OBJECTS = frozenset(
    {"self", "this", "window", "document", "os", "sys", "console", "obj", "object", "user",
     "request", "response", "req", "res", "file", "data", "config", "args", "kwargs",
     "params", "ctx", "module", "exports", "process", "math", "json", "string", "array",
     "navigator", "location", "event", "element", "item", "node", "app", "parent", "http",
     "https"}
)  # fmt: skip
CODE_FIRST_LABELS = _REVERSE_DNS_FIRST | _CODE_OBJECTS

_TITLE_LABEL = re.compile(r"[A-Z][A-Za-z0-9]*\Z")
_CAMEL_LABEL = re.compile(r"[a-z]+[0-9]*[A-Z]")  # objHTTP, objStream, getElementById
_REDACTED_LABEL = re.compile(r"[xX]{3,}\Z")  # a.b.c.xxx, customer.xxx, bank.xxxxx.com
_UPPER_LABEL = re.compile(r"[A-Z]{2,}\Z")
_HAS_UPPER = re.compile(r"[A-Z]")
_HOST_END = re.compile(r"[/?#:]")


_HOSTNAME = re.compile(r"(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)*(?!-)[a-z0-9-]{1,63}(?<!-)")


_EXACT, _WILDCARD, _EXCEPTION = 1, 2, 3


@dataclass(frozen=True, slots=True)
class _SuffixRules:
    """The ICANN section of the bundled Public Suffix List, split by rule kind."""

    exact: frozenset[str]  # "com", "co.uk"
    wildcard: frozenset[str]  # "ck" for the rule "*.ck"
    exception: frozenset[str]  # "www.ck" for the rule "!www.ck"
    max_labels: int  # labels in the longest rule
    kinds: dict[str, int]  # every name above: the kind of rule that decides for it
    tails: frozenset[str]  # every name above and each name that ends one ("uk" for "co.uk")


def _section(name: str) -> list[str]:
    """The rule lines of one section (``ICANN`` or ``PRIVATE``) of the bundled list."""
    lines: list[str] = []
    inside = False
    for raw in Path(PSLFILE).read_bytes().decode("utf-8", "surrogateescape").split("\n"):
        line = raw.rstrip()
        if line in (f"// ===BEGIN {name} DOMAINS===", f"// ===END {name} DOMAINS==="):
            inside = "BEGIN" in line
            continue
        rule = line.lower().split(" ")[0].rstrip()
        if inside and rule and not rule.startswith("//"):
            lines.append(rule)
    return lines


@lru_cache(maxsize=1)
def _suffix_rules() -> _SuffixRules:
    """Read the list the way ``PublicSuffixList(only_icann=True)`` does (IDN rules twice:
    as written and punycoded)."""
    return _rules(_section("ICANN"))


@lru_cache(maxsize=1)
def _customer_zone_rules() -> _SuffixRules:
    """Zones where a provider's customers pick the label: the list's private section plus
    ``data/customer_zones.txt`` (provider zones the list does not name yet)."""
    data = resources.files("generator").joinpath("data/customer_zones.txt")
    extra = [line.split("#", 1)[0].strip().lower() for line in data.read_text().splitlines()]
    return _rules(_section("PRIVATE") + [rule for rule in extra if rule])


def _rules(lines: list[str]) -> _SuffixRules:
    rules: set[str] = set()
    max_labels = 0
    for rule in lines:
        max_labels = max(max_labels, rule.count(".") + 1)
        rules.add(rule)
        encoded = rule.lstrip("!").encode("idna").decode("ascii")
        rules.add("!" + encoded if rule.startswith("!") else encoded)
    exact = frozenset(r for r in rules if r[0] not in "!*")
    wildcard = frozenset(r[2:] for r in rules if r.startswith("*."))
    exception = frozenset(r[1:] for r in rules if r.startswith("!"))
    # An exception rule counts before a wildcard before an exact one.
    kinds = dict.fromkeys(exact, _EXACT)
    kinds.update(dict.fromkeys(wildcard, _WILDCARD))
    kinds.update(dict.fromkeys(exception, _EXCEPTION))
    tails = {name.split(".", i)[-1] for name in kinds for i in range(name.count(".") + 1)}
    return _SuffixRules(exact, wildcard, exception, max_labels, kinds, frozenset(tails))


def _public_labels(domain: str, rules: _SuffixRules | None = None) -> int:
    """How many trailing labels of ``domain`` form its public suffix (0: none known).

    ``domain`` is a valid lowercase hostname. The longest candidate suffix that a rule names
    decides, an exception before a wildcard before an exact rule, as ``PublicSuffixList``
    does. Every name that ends a rule's name is in ``tails``, so the suffixes are tried from
    the last label leftwards, each a slice of ``domain`` after a dot, and the walk stops at
    the first one outside ``tails``: no longer suffix can be a rule's name.
    """
    rules = rules or _suffix_rules()
    kinds, tails = rules.kinds, rules.tails
    kind = depth = 0
    labels = 1
    dot = domain.rfind(".")
    while True:
        suffix = domain[dot + 1 :]
        if suffix not in tails:
            break
        found = kinds.get(suffix)
        if found is not None:
            kind, depth = found, labels
        if dot == -1:
            break
        dot = domain.rfind(".", 0, dot)
        labels += 1
    if kind == _EXCEPTION:
        return depth - 1
    if kind == _WILDCARD:
        # A wildcard rule's name is one label short of the suffix, unless it is the domain.
        return depth + 1 if depth < domain.count(".") + 1 else depth
    return depth


@lru_cache(maxsize=65536)
def is_valid_domain(domain: str) -> bool:
    """True for a lowercase hostname with a known public suffix and a registrable label."""
    if not domain or len(domain) > 253 or "." not in domain:
        return False
    if not _HOSTNAME.fullmatch(domain):
        return False
    public = _public_labels(domain)
    return 0 < public <= domain.count(".")


def alt_root_domain(domain: str) -> bool:
    """True for a lowercase hostname under an alternative root (``carder.bit``)."""
    return (
        "." in domain
        and len(domain) <= 253
        and domain.rpartition(".")[2] in ALT_ROOTS
        and bool(_HOSTNAME.fullmatch(domain))
    )


def _looks_like_code(token: str, labels: list[str]) -> bool:
    """Detection names, .NET namespaces, package names and code expressions."""
    plain = token.isascii() and not _HAS_UPPER.search(token)
    lowered = labels if plain else [label.lower() for label in labels]
    if not DETECTION_WORDS.isdisjoint(lowered):
        return True
    if lowered[0] in _REVERSE_DNS_FIRST or (len(labels) == 2 and lowered[0] in _CODE_OBJECTS):
        return True
    if plain:
        return False  # each check below needs an uppercase letter
    if not token.isupper() and all(_TITLE_LABEL.match(label) for label in labels):
        return True  # System.IO, Microsoft.NET, Trojan.Agent.ET, Qakbot.PA
    if any(_CAMEL_LABEL.match(label) for label in labels):
        return True  # objHTTP.open, objStream.Open
    return bool(_UPPER_LABEL.match(labels[-1]) and not token.isupper())  # emotet.PA


@lru_cache(maxsize=65536)
def _plain_domain(token: str) -> str | None:
    """Checks for a domain written plainly (not defanged); depends on the token only."""
    domain = token.lower()
    if not is_valid_domain(domain):
        return None
    if (
        domain.rpartition(".")[2] in FILE_EXTENSION_TLDS
        and _public_labels(domain) == 1
        and not _customer_zone_labels(domain)
    ):
        return None  # the public suffix is that one label, and no provider zone holds it
    if _looks_like_code(token, token.split(".")) or redacted(domain):
        return None
    return domain


def redacted(host: str) -> bool:
    """A label of three or more x's is a redaction mark, not a name (``a.b.c.xxx``)."""
    if "xxx" not in host and "xxx" not in host.lower():
        return False  # no run of three x's, so no label of them
    return any(_REDACTED_LABEL.match(label) for label in host.split("."))


def is_tld(label: str) -> bool:
    """True for a lowercase label that is an ICANN top-level domain (``com``, ``run``)."""
    return "." not in label and label in _suffix_rules().kinds


def standalone_domain_ok(token: str, *, defanged: bool, before: str, after: str) -> str | None:
    """Validate a domain that stands on its own in the text; return it normalised or None.

    ``token`` is the fanged token as written (case kept), ``before``/``after`` a few
    characters of surrounding text used to spot file paths and detection syntax.
    ``generator.extract.match._domains`` applies the checks for a plain token in place (the
    same ``_pathish``, ``!``/``(`` and ``_plain_domain`` tests): keep the two alike.
    """
    token = token.rstrip(".")
    if defanged:
        domain = token.lower()
        return domain if is_valid_domain(domain) or alt_root_domain(domain) else None
    if _pathish(before) or after[:1] in ("!", "("):
        return None
    return _plain_domain(token)


def _pathish(before: str) -> bool:
    """A file path ends ``before``: a backslash, or a slash after a word character
    (``\\w``: ``str.isalnum`` or an underscore)."""
    if before.endswith("\\"):
        return True
    return len(before) > 1 and before[-1] == "/" and (before[-2].isalnum() or before[-2] == "_")


def allowlisted(host: str, allow: frozenset[str]) -> bool:
    """``host_in(host, allow)``, except that a name in a customer zone is the customer's.

    Under a provider zone where customers pick the label (``*.azurewebsites.net``,
    ``*.a.run.app``, ``*.github.io``: the private section of the Public Suffix List), the
    allowlisted provider domain does not cover its customers' names: only an allowlist
    entry at or below the customer's own name does (``fonts.googleapis.com``).
    """
    if host in allow:
        return True
    if not host_in(host, allow):
        return False
    zone = _customer_zone_labels(host)
    if not zone or zone > host.count("."):
        return host_in(host, allow)
    labels = host.split(".")
    return any(".".join(labels[i:]) in allow for i in range(len(labels) - zone))


@lru_cache(maxsize=65536)
def _customer_zone_labels(host: str) -> int:
    return _public_labels(host, _customer_zone_rules())


@lru_cache(maxsize=1)
def private_suffixes() -> frozenset[str]:
    """The private section of the bundled Public Suffix List: names under which anyone may
    register a name (``github.io``, ``s3.amazonaws.com``); a wildcard rule ``*.x`` gives ``x``."""
    names: set[str] = set()
    private = False
    for raw in Path(PSLFILE).read_bytes().decode("utf-8", "surrogateescape").split("\n"):
        line = raw.strip()
        if line.startswith("// ===BEGIN PRIVATE DOMAINS==="):
            private = True
        elif line.startswith("// ===END PRIVATE DOMAINS==="):
            private = False
        elif private and line and not line.startswith(("//", "!")):
            rule = line.lower().split(" ")[0].removeprefix("*.")
            names.add(rule.encode("idna").decode("ascii") if not rule.isascii() else rule)
    return frozenset(names)


def host_in(host: str, domains: frozenset[str]) -> bool:
    """True when ``host`` equals one of ``domains`` or is a subdomain of one. The walk up
    stops at a private public suffix: ``github.io`` listed covers ``github.io`` itself, not the
    user-registered ``someone.github.io`` under it."""
    if not domains or not host:
        return False
    if host in domains:
        return True
    private = private_suffixes()
    dot = host.find(".")
    while dot != -1:
        parent = host[dot + 1 :]
        if parent in private:
            return False
        if parent in domains:
            return True
        dot = host.find(".", dot + 1)
    return False


def normalize_domains(values: Iterable[str]) -> frozenset[str]:
    """Normalise a domain list: trimmed, lowercase, no ``*.`` wildcard prefix, no trailing dot.

    A URL is reduced to its host, so a feed's site URL can be passed as is, and a leading
    ``www.`` is dropped so that the whole site (and its other subdomains) is covered.
    """
    out: set[str] = set()
    for value in values:
        domain = value.strip().lower()
        if "://" in domain:
            domain = domain.split("://", 1)[1]
        domain = _HOST_END.split(domain, maxsplit=1)[0].rsplit("@", 1)[-1].rstrip(".")
        for prefix in ("*.", "www."):
            domain = domain.removeprefix(prefix)
        if domain:
            out.add(domain)
    return frozenset(out)


def _parse_allowlist(lines: Iterable[str]) -> frozenset[str]:
    return normalize_domains(line.split("#", 1)[0] for line in lines)


@lru_cache(maxsize=1)
def _default_allowlist() -> frozenset[str]:
    data = resources.files("generator").joinpath("data/allowlist.txt")
    return _parse_allowlist(data.read_text(encoding="utf-8").splitlines())


def load_allowlist(path: str | Path | None = None) -> frozenset[str]:
    """Load an allowlist file (one domain a line, ``#`` comments); default: the bundled one."""
    if path is None:
        return _default_allowlist()
    return _parse_allowlist(Path(path).read_text(encoding="utf-8").splitlines())
