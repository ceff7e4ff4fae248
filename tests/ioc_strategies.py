"""Hypothesis strategies for records full of the text that breaks formats.

Free text (titles, context, tags, feed names and the values of string-typed indicators) mixes
arbitrary Unicode with the characters each format must escape: quotes, backslashes, pipes,
``=``, CR/LF, ``]]>``, ``<&>``, tabs, control characters and characters XML 1.0 forbids.
Values of typed indicators (addresses, hashes, CVE and ATT&CK ids) stay well-formed.
"""

from __future__ import annotations

from hypothesis import strategies as st

from exports.model import IOCRecord

TRICKY = (
    '"',
    "'",
    "\\",
    "\\\\",
    "|",
    "=",
    "\n",
    "\r",
    "\r\n",
    "]]>",
    "<",
    ">",
    "&",
    "\t",
    " ",
    "ü",
    "日本",
    "🐍",
    "\x00",
    "\x1b",
    "\x7f",
    "\ufffe",
    "\u2028",
    "\x85",
    "key=v ",
)
CHARS = st.characters(exclude_categories=("Cs",))
text = st.lists(st.one_of(st.sampled_from(TRICKY), st.text(CHARS, max_size=6)), max_size=8).map(
    "".join
)
# An indicator value always has visible characters (extraction guarantees it).
nonblank = text.filter(lambda s: "".join(c for c in s if c.isprintable()).strip() != "")
_hex = "0123456789abcdef"


def _hash(n: int) -> st.SearchStrategy[str]:
    return st.text(_hex, min_size=n, max_size=n)


VALUES: dict[str, st.SearchStrategy[str]] = {
    "ipv4": st.ip_addresses(v=4).map(str),
    "ipv6": st.ip_addresses(v=6).map(str),
    "domain": nonblank,
    "url": nonblank,
    "md5": _hash(32),
    "sha1": _hash(40),
    "sha256": _hash(64),
    "sha512": _hash(128),
    "email": nonblank,
    "cve": st.builds("CVE-{}-{}".format, st.integers(1999, 2099), st.integers(1000, 99999)),
    "mitre_attack": st.sampled_from(("T1071", "T1059.001", "T1566.001", "T1000", "T1999.999")),
}
techniques = st.lists(VALUES["mitre_attack"], max_size=3, unique=True).map(tuple)


@st.composite
def records(draw: st.DrawFn, types: tuple[str, ...] = tuple(VALUES)) -> IOCRecord:
    type_ = draw(st.sampled_from(types))
    first = draw(st.integers(1_500_000_000, 1_800_000_000))
    return IOCRecord(
        id=str(draw(st.uuids())),
        type=type_,
        value=draw(VALUES[type_]),
        confidence=draw(st.sampled_from(("high", "medium", "low"))),
        first_seen=first,
        last_seen=first + draw(st.integers(0, 10**7)),
        sightings=draw(st.integers(1, 50)),
        article_id=draw(st.text(_hex, min_size=16, max_size=16)),
        article_title=draw(text),
        article_url=draw(text),
        feed_name=draw(text),
        category=draw(
            st.sampled_from(("news", "research", "threat-intel", "vendor", "government"))
        ),
        context=draw(text),
        tags=tuple(draw(st.lists(text, max_size=3))),
        mitre_techniques=draw(techniques),
    )


# Hostile text for the extractor: long runs of what its patterns and defang rules look at
# (sentence marks, digits, hex, defang marks, labels, brackets, ``@``, `` dot `` chains).
# Used by tests/test_extract_adversarial.py, which builds its timed corpus from the same
# pieces.
HOSTILE_UNITS = (
    ".",
    "!",
    "?",
    ".!?",
    "... ",
    "1",
    "0123456789",
    "0123456789abcdef",
    "a[.]",
    "[.]",
    "(.)",
    "a[dot]",
    "hxxp",
    "hxxp://",
    "hxxps[:]//a",
    "a.",
    "1.",
    "a.1.",
    "(",
    "[",
    "{",
    ")",
    "]",
    "\\",
    "a\\.",
    "a dot ",
    "a DOT ",
    "hxxp://a dot ",
    "@",
    "a@",
    "a@b.",
    "a[at]",
    ":",
    "a:",
    "::",
    "T1",
    "CVE-",
    "-",
    "a-",
    "é.",
)
hostile_runs = st.builds(
    lambda unit, n: unit * n, st.sampled_from(HOSTILE_UNITS), st.integers(1, 4000)
)
hostile_text = st.lists(hostile_runs, min_size=1, max_size=4).map("".join)
