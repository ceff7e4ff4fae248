"""Tests for generator.extract.htmltext.html_to_text."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.extract.htmltext import html_to_text
from generator.extract.indicators import extract


def test_empty_and_blank() -> None:
    assert html_to_text("") == ""
    assert html_to_text("   \n\t ") == ""
    assert html_to_text("<!-- only a comment -->") == ""
    assert html_to_text("<html><body></body></html>") == ""


def test_plain_text_passes_through() -> None:
    assert html_to_text("just  some\ntext") == "just some text"


def test_blocks_end_lines() -> None:
    html = (
        "<h1>Title</h1><p>First <b>bold</b> para.</p><div>Second</div>"
        "<ul><li>one</li><li>two</li></ul><blockquote>quote</blockquote>"
        "<section>sec</section><article>art</article>line<br>break"
    )
    assert html_to_text(html).split("\n") == [
        "Title", "First bold para.", "Second", "one", "two", "quote", "sec", "art", "line",
        "break",
    ]  # fmt: skip


def test_inline_elements_do_not_break() -> None:
    assert html_to_text("<p>evil<span>.</span>com and <a href='x'>link</a></p>") == (
        "evil.com and link"
    )


def test_table_cells_are_separated() -> None:
    html = (
        "<table><thead><tr><th>Type</th><th>Value</th><th>Note</th></tr></thead>"
        "<tbody><tr><td>ipv4</td><td>185.220.101.4</td><td>C2</td></tr>"
        "<tr><td>domain</td><td>evil[.]com</td><td><p>phishing</p><p>kit</p></td></tr>"
        "</tbody></table>"
    )
    assert html_to_text(html).split("\n") == [
        "Type | Value | Note",
        "ipv4 | 185.220.101.4 | C2",
        "domain | evil[.]com | phishing kit",
    ]


def test_adjacent_cells_never_merge() -> None:
    html = "<table><tr><td>185.220.101.4</td><td>8.8.4.4</td></tr></table>"
    assert html_to_text(html) == "185.220.101.4 | 8.8.4.4"
    values = [i.value for i in extract(html_to_text(html))]
    assert values == ["185.220.101.4", "8.8.4.4"]


def test_pre_and_code_keep_line_breaks() -> None:
    html = "<p>Hashes:</p><pre>aaa\n  bbb\n\nccc</pre><code>x1\nx2</code><p>after</p>"
    assert html_to_text(html).split("\n") == ["Hashes:", "aaa", "bbb", "ccc", "x1", "x2", "after"]


def test_whitespace_collapsed_outside_pre() -> None:
    assert html_to_text("<p>a \n\t  b&nbsp;&nbsp;c</p>") == "a b c"


def test_script_style_noscript_dropped() -> None:
    html = (
        "<head><title>t</title><style>p{color:red}</style></head><body>"
        "<script>var evil='x.com';</script><p>kept</p><noscript>nojs</noscript>tail</body>"
    )
    assert html_to_text(html) == "kept\ntail"


def test_entities_decoded() -> None:
    assert (
        html_to_text("<p>Tom &amp; Jerry &lt;3 &#x41;&#66; &eacute;</p>") == "Tom & Jerry <3 AB é"
    )


def test_encoding_declaration_is_accepted() -> None:
    html = '<?xml version="1.0" encoding="iso-8859-1"?><p>caf\u00e9</p>'
    assert html_to_text(html) == "caf\u00e9"


def test_no_external_entities_or_network() -> None:
    html = (
        '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><p>a&e;b</p>'
        '<img src="http://127.0.0.1:1/x.png"><iframe src="http://127.0.0.1:1/"></iframe>'
    )
    text = html_to_text(html)
    assert "root:" not in text
    assert "a" in text


def test_garbage_does_not_raise() -> None:
    for junk in [
        "<",
        "<<<>>>",
        "</p></div>",
        "\x00\x01\x02",
        "\ud800",
        "<p" * 1000,
        "&#xffffffff;",
    ]:
        assert isinstance(html_to_text(junk), str)


def test_deep_nesting_does_not_raise() -> None:
    html = "<div>" * 5000 + "deep" + "</div>" * 5000
    assert "deep" in html_to_text(html) or html_to_text(html) == ""


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=500))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    out = html_to_text(text)
    assert isinstance(out, str)
    assert all(line == line.strip() and line for line in out.split("\n") if out)


_TAGS = st.sampled_from(["p", "div", "td", "tr", "table", "pre", "code", "script", "br", "li", "b"])


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_TAGS, st.text(max_size=20), st.booleans()), max_size=30))
def test_never_raises_on_tag_soup(parts: list[tuple[str, str, bool]]) -> None:
    html = "".join(f"<{t}>{x}" + (f"</{t}>" if close else "") for t, x, close in parts)
    assert isinstance(html_to_text(html), str)
