"""Hostile input: extraction runs in linear time, at most 3x the cost of ordinary prose.

The corpus is built here, from runs of what the extractor's patterns and defang rules look
at (sentence marks, digits, hex, ``[.]`` chains, ``hxxp`` prefixes, 250-label domains,
brackets, `` dot `` chains, ``@`` ...), each about 300 KB long, plus 1 MB single lines.
Each input is timed (best of 3) against ordinary prose (the dev-set articles of
tests/data/extraction, repeated) measured in the same run; an input over the limit is
measured once more, prose included, before the test fails, so that a burst of load on a
shared machine does not fail it. Every timing runs under a deadline so that a regression
to quadratic time fails in seconds instead of hanging the suite.
"""

from __future__ import annotations

import gc
import re
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.extract.analyst import decode_report, looks_like_html
from generator.extract.htmltext import html_to_text
from generator.extract.indicators import extract
from tests.ioc_strategies import HOSTILE_UNITS, hostile_text

DATA = Path(__file__).resolve().parent / "data" / "extraction"
SIZE = 300_000
LIMIT = 3.0  # times the cost per MB of prose
PROSE_TEXT = "\n".join(p.read_text(encoding="utf-8") for p in sorted(DATA.glob("*.txt")))
PLANT = "Beacon to 45.33.32.156 "


def _repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _prose(size: int) -> str:
    return _repeat(PROSE_TEXT, size)


# name -> builder of an input of about ``size`` characters (an IOC planted in front).
CORPUS: dict[str, Callable[[int], str]] = {
    f"run of {unit!r}": (lambda size, unit=unit: PLANT + _repeat(unit, size) + " end")
    for unit in HOSTILE_UNITS
}
CORPUS.update(
    {
        "250-label domains": lambda size: _repeat("a." * 249 + "com ", size),
        "long a.a.a.a": lambda size: PLANT + "a" + _repeat(".a", size),
        "long 1.1.1.1": lambda size: PLANT + "1" + _repeat(".1", size),
        "hex run": lambda size: PLANT + _repeat("deadbeef", size),
        "url ending in )": lambda size: "http://evil.example.net/" + ")" * size,
        "url ending in ]": lambda size: "see http://evil.example.net/" + "]" * size + " x",
        "defanged url of [.] pieces": lambda size: "hxxp://a" + _repeat("[.]a", size),
        "dot chain after a mark": lambda size: "hxxp://evil" + _repeat(" dot a", size),
        "dot chain, mark first": lambda size: "x[.]y " + _repeat("a dot ", size),
        "sentence marks before spaces": lambda size: _repeat("." * 50 + " ", size),
        "marks then a sentence": lambda size: _repeat("!?." * 300 + "  A ", size),
        "( and [ runs": lambda size: _repeat("([" * 100 + "x ", size),
        "unbalanced brackets": lambda size: _repeat("(a[b{c", size),
        "many @": lambda size: _repeat("a@b@c.d@", size),
        "placeholder labels": lambda size: PLANT + _repeat("[ID].a*.", size),
        "placeholder, then a long name": lambda size: PLANT + "[ID]." + _repeat("a.", size),
        "CVE ids with a blank, never closed": lambda size: PLANT + _repeat("CVE- 2010-CVE- ", size),
        "1 MB single line of prose": lambda size: _prose(1_000_000).replace("\n", " "),
        "1 MB single line of hostile runs": lambda size: "".join(
            _repeat(unit, 1_000_000 // len(HOSTILE_UNITS)) for unit in HOSTILE_UNITS
        ).replace("\n", " "),
    }
)


class _Overtime(Exception):
    pass


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise ``_Overtime`` when the block runs longer than ``seconds`` (the regex engine
    checks for signals, so this interrupts a runaway match too)."""

    def expire(signum: int, frame: object) -> None:
        raise _Overtime(f"still running after {seconds:.1f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _best(fn: Callable[[str], object], text: str, runs: int = 3, limit: float = 60.0) -> float:
    """Best of ``runs`` timings of ``fn(text)``, in seconds of CPU time; fails past ``limit``
    seconds of wall-clock time.

    CPU time of this thread, with the garbage collector held off, is what the algorithm
    costs; wall-clock time would count the other processes of a shared machine, and a
    collection would count every object the test process holds.
    """
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(runs):
            with _deadline(limit):
                start = time.thread_time()
                fn(text)
                best = min(best, time.thread_time() - start)
    except _Overtime as exc:
        pytest.fail(f"{len(text)} characters: {exc}")
    finally:
        gc.enable()
    return best


@pytest.fixture(scope="module")
def prose_per_char() -> float:
    prose = _prose(SIZE)
    assert len(extract(prose)) > 100  # ordinary prose, full of indicators
    return _best(extract, prose) / len(prose)


def _hostile_seconds_limit(prose_per_char: float, size: int) -> float:
    # 20 times the allowed time, and never under 2 s: past that a timing is not noise.
    return max(2.0, 20 * LIMIT * prose_per_char * size)


@pytest.mark.parametrize("name", list(CORPUS))
def test_hostile_input_costs_at_most_3x_prose_per_mb(name: str, prose_per_char: float) -> None:
    text = CORPUS[name](SIZE)
    assert len(text) >= 200_000
    limit = _hostile_seconds_limit(prose_per_char, len(text))
    ratio = _best(extract, text, limit=limit) / len(text) / prose_per_char
    if ratio > LIMIT:  # measure both again, turn about, before calling it a failure
        prose = _prose(SIZE)
        prose_best = hostile_best = float("inf")
        for _ in range(5):
            prose_best = min(prose_best, _best(extract, prose, runs=1))
            hostile_best = min(hostile_best, _best(extract, text, runs=1, limit=limit))
        ratio = hostile_best / len(text) / (prose_best / len(prose))
    assert ratio <= LIMIT, f"{name}: {ratio:.2f} times the time per MB of prose"


# Inputs whose cost the scaling check looks at; quadratic ones took seconds at 40 KB.
SCALING = [name for name in CORPUS if not name.startswith("1 MB")] + ["dense IP list"]
CORPUS_SCALING = {**CORPUS, "dense IP list": lambda size: _repeat("8.8.4.4 ", size)}


def _doubling_ratio(
    fn: Callable[[str], object], build: Callable[[int], str], size: int, limit: float
) -> tuple[float, float, float]:
    small, large = build(size), build(2 * size)
    t_small = _best(fn, small, limit=limit)
    t_large = _best(fn, large, limit=2 * limit)
    return t_small, t_large, t_large / max(t_small, 1e-9)


def _assert_linear(
    fn: Callable[[str], object],
    build: Callable[[int], str],
    size: int,
    limit: float,
    slack: float,
    what: str,
) -> None:
    """Doubling the input at most triples the time (quadratic time would quadruple it).

    ``slack`` seconds (a fraction of what prose of the larger size costs) are allowed on
    top, for inputs that take a few milliseconds, where cache effects and timer noise
    dominate; a ratio over 3 is measured once more before it fails.
    """
    for _attempt in range(2):
        t_small, t_large, ratio = _doubling_ratio(fn, build, size, limit)
        if t_large <= 3 * t_small + slack:
            return
    pytest.fail(
        f"{what}: {t_small * 1e3:.1f} ms -> {t_large * 1e3:.1f} ms when doubled ({ratio:.2f}x)"
    )


@pytest.mark.parametrize("name", SCALING)
def test_extraction_time_grows_linearly(name: str, prose_per_char: float) -> None:
    limit = _hostile_seconds_limit(prose_per_char, 2 * SIZE)
    slack = 0.25 * prose_per_char * SIZE
    _assert_linear(extract, CORPUS_SCALING[name], SIZE // 2, limit, slack, name)


def test_the_reported_case_is_fast() -> None:
    """The reproduction from the report: 40,000 full stops took 12.9 s."""
    text = "Beacon to 45.33.32.156 " + "." * 40_000 + " end"
    with _deadline(5.0):
        found = extract(text)
    assert [(i.type, i.value) for i in found] == [("ipv4", "45.33.32.156")]


# --- HTML: the report path sniffs and converts HTML before extracting -----------------


def test_html_sniffing_is_linear_in_a_run_of_comments() -> None:
    """Each comment ends at its first ``-->``: 22 comments before text took a second."""
    for count in (40, 8000):
        with _deadline(2.0):
            assert not looks_like_html(b"<!--a-->" * count + b"x")
    assert looks_like_html(b"<!-- a --> <!-- b -->\n<!DOCTYPE html><p>x</p>")
    assert looks_like_html(b"<!--a-->" * 40 + b"<html><body>x</body></html>")


@pytest.mark.parametrize("tail", ["<br", "<p ", "<", "</script "])
def test_html_fallback_is_linear_on_unclosed_tags(tail: str) -> None:
    """Markup libxml2 gives up on goes through the regex fallback; its tag patterns read
    to the end of the text from every ``<`` that no ``>`` follows."""

    def build(size: int) -> str:
        return "<div>" * 5000 + "x 45.33.32.156 " + _repeat(tail, size)

    _assert_linear(html_to_text, build, 20_000, 10.0, 0.005, f"fallback on {tail!r}")
    text = html_to_text(build(20_000))
    assert "45.33.32.156" in text and tail.strip() in text


def test_fallback_keeps_tags_closed_before_the_last_gt() -> None:
    from generator.extract.htmltext import _fallback

    assert _fallback("<p>a<br>b</p><i>c</i> <x d") == "a\nb\nc <x d"
    assert _fallback("a <b <c> d") == "a d"


def test_report_path_on_hostile_html_is_fast() -> None:
    data = ("<div>" * 5000 + "<br" * 50_000 + " 45.33.32.156").encode()
    with _deadline(10.0):
        text = decode_report(data)
        found = extract(text)
    assert ("ipv4", "45.33.32.156") in [(i.type, i.value) for i in found]


# --- Equivalence of the linear-time rewrites with the patterns they replace ------------

_OLD_SENT_END = re.compile(r"[.!?][.!?]*\s+(?=[A-Z])")


@settings(max_examples=300)
@given(st.text(alphabet=".!?. \n\tAbZ", max_size=120), st.data())
def test_windowed_sentence_ends_match_the_plain_pattern(text: str, data: st.DataObject) -> None:
    from generator.extract.context import _sentence_ends

    pos = data.draw(st.integers(0, len(text)))
    endpos = data.draw(st.integers(pos, len(text)))
    assert [m.span() for m in _sentence_ends(text, pos, endpos)] == [
        m.span() for m in _OLD_SENT_END.finditer(text, pos, endpos)
    ]


_OLD_CHAIN_HEAD = re.compile(r"(\S+)(?: (?:dot|DOT) [A-Za-z0-9-]+)*\Z")
_CHAIN_PIECES = [
    "a",
    "b1",
    "-",
    " dot ",
    " DOT ",
    " Dot ",
    " ",
    "  ",
    "\t",
    "hxxp://",
    "[.]",
    "x@y",
    ":",
    "é",
    "[at]",
]


@settings(max_examples=500)
@given(st.lists(st.sampled_from(_CHAIN_PIECES), max_size=25).map("".join))
def test_dot_chain_heads_match_the_chain_regex(prefix: str) -> None:
    """On chains shorter than the 256-character window, the head found by walking the
    chain is the one the old regex search found."""
    from generator.extract.refang import _HEAD_MARK, _head_marked

    text = prefix + "z dot q"
    space = len(prefix) + 1
    head = _OLD_CHAIN_HEAD.search(text, max(0, space - 256), space)
    expected = bool(head and _HEAD_MARK.search(head.group(1)))
    assert _head_marked(text, space, {}) == expected


def test_trim_url_keeps_balanced_brackets() -> None:
    from generator.extract.match import _trim_url

    assert _trim_url("http://a.b/x_(y))).,") == "http://a.b/x_(y)"
    assert _trim_url("http://a.b/[x]]]") == "http://a.b/[x]"
    assert _trim_url("http://a.b/x" + ")" * 100_000) == "http://a.b/x"
    assert _trim_url("http://a.b/((x" + ")" * 5) == "http://a.b/((x))"


# --- Property: hostile runs around a planted indicator ---------------------------------

PLANTED = [
    ("ipv4", "45.33.32.156", "45.33.32.156"),
    ("domain", "evil-c2.net", "evil-c2[.]net"),
    ("url", "http://evil-c2.net/gate.php", "hxxp://evil-c2[.]net/gate.php"),
    (
        "sha256",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    ),
    ("email", "ops@evil-c2.net", "ops[at]evil-c2[.]net"),
]


@settings(max_examples=60, deadline=None)
@given(hostile_text, hostile_text, st.sampled_from(PLANTED))
def test_a_planted_indicator_survives_hostile_runs(
    before: str, after: str, planted: tuple[str, str, str]
) -> None:
    kind, value, written = planted
    text = f"{before}\n\nC2: {written}\n\n{after}"
    with _deadline(10.0):
        found = extract(text)
    assert (kind, value) in [(i.type, i.value) for i in found]


@settings(max_examples=300)
@given(st.text(alphabet="aZ09.-@:_ \n[]é", max_size=200))
def test_needle_scans_match_full_scans(text: str) -> None:
    from generator.extract import match as m

    ascii_text = text.encode("ascii", "replace")
    for pattern, chars, needle in (
        (m._IPV4, m._IPV4_RUN_CHARS, m._IPV4_NEEDLE),
        (m._DOMAIN, m._HOST_RUN_CHARS, m._DOMAIN_NEEDLE),
    ):
        found = m._run_matches(text, pattern, ".", chars, ascii_text, None, needle)
        assert [x.span() for x in found] == [x.span() for x in pattern.finditer(text)]
    expected = [x.span() for x in m._EMAIL.finditer(text)]
    dense = m._DENSE_AT
    try:
        for m._DENSE_AT in (0, 10**9):  # the anchored scan, then finditer, whatever the text
            assert [x.span() for x in m._email_matches(text, ascii_text)] == expected
    finally:
        m._DENSE_AT = dense
