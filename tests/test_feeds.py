import dataclasses
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.sources import feeds
from generator.sources.feeds import Feed, FeedError, FeedItem, parse_date, parse_feed

RSS2 = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
  <title>  Example   Threat Blog </title>
  <link>https://blog.example.com/</link>
  <atom:link rel="self" href="https://blog.example.com/feed.xml"/>
  <item>
    <title>APT &amp; friends:
      new loader</title>
    <link>/posts/apt-loader</link>
    <guid isPermaLink="false">post-1</guid>
    <pubDate>Tue, 02 Jan 2024 10:00:00 EST</pubDate>
    <category>Malware</category>
    <category> malware </category>
    <category>APT29</category>
    <description>Short summary</description>
    <content:encoded><![CDATA[<p>C2 at <b>198.51.100.7</b> &amp; evil.example</p>]]></content:encoded>
  </item>
  <item>
    <title>Second</title>
    <link>https://other.example.org/a?b=1</link>
    <dc:date>2024-01-03T08:30:00+02:00</dc:date>
    <description>&lt;p&gt;escaped &lt;i&gt;html&lt;/i&gt;&lt;/p&gt;</description>
  </item>
  <item><guid>https://blog.example.com/posts/3</guid><description>by guid</description></item>
  <item><category>empty</category></item>
</channel>
</rss>
"""

RDF = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"
         xmlns:content="http://purl.org/rss/1.0/modules/content/">
  <channel rdf:about="https://rdf.example.net/">
    <title>RDF Feed</title>
    <link>https://rdf.example.net/</link>
    <items><rdf:Seq><rdf:li rdf:resource="https://rdf.example.net/1"/></rdf:Seq></items>
  </channel>
  <item rdf:about="https://rdf.example.net/1">
    <title>First RDF item</title>
    <link>posts/1</link>
    <dc:date>2024-02-01T12:00:00Z</dc:date>
    <dc:subject>Phishing</dc:subject>
    <description>plain description</description>
  </item>
  <item rdf:about="urn:rdf:2">
    <title>Second RDF item</title>
    <content:encoded>&lt;p&gt;rich&lt;/p&gt;</content:encoded>
    <description>poor</description>
  </item>
</rdf:RDF>
"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="html">&lt;b&gt;Atom&lt;/b&gt; &amp;amp; Co</title>
  <link rel="self" href="https://atom.example.com/feed.atom"/>
  <link rel="alternate" type="text/html" href="https://atom.example.com/"/>
  <id>urn:feed</id>
  <entry>
    <id>urn:entry:1</id>
    <title>HTML entry</title>
    <link rel="alternate" type="application/pdf" href="/report.pdf"/>
    <link rel="alternate" type="text/html" href="/entries/1"/>
    <link rel="enclosure" href="/file.bin"/>
    <published>2024-03-01T09:15:00Z</published>
    <updated>2024-03-05T00:00:00Z</updated>
    <category term="Ransomware" label="ignored"/>
    <category label="Label Only"/>
    <category term="ransomware"/>
    <summary>summary loses</summary>
    <content type="html">&lt;p&gt;Hash &lt;code&gt;abc&lt;/code&gt;&lt;/p&gt;</content>
  </entry>
  <entry>
    <id>urn:entry:2</id>
    <title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">XHTML <b>title</b></div></title>
    <link href="entries/2"/>
    <updated>2024-03-02T10:00:00+01:00</updated>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Para <a href="/x">link</a><br/></p> &amp; tail</div></content>
  </entry>
  <entry>
    <id>urn:entry:3</id>
    <title>Text entry</title>
    <content type="text">if a &lt; b &amp;&amp; c</content>
  </entry>
  <entry>
    <id>urn:entry:4</id>
    <title>Summary only</title>
    <summary type="html">&lt;em&gt;sum&lt;/em&gt;</summary>
  </entry>
</feed>
"""


def _rss(items: str, channel_link: str = "https://base.example.com/dir/") -> bytes:
    doc = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>{channel_link}</link>{items}</channel></rss>"
    )
    return doc.encode("utf-8")


def _all_text(feed: Feed) -> str:
    parts = [feed.title, feed.link]
    for item in feed.items:
        parts.extend(str(value) for value in dataclasses.astuple(item))
    return "\n".join(parts)


# --- formats -----------------------------------------------------------------------------


def test_rss2_content_cdata_and_categories() -> None:
    feed = parse_feed(RSS2)
    assert feed.title == "Example Threat Blog"
    assert feed.link == "https://blog.example.com/"
    assert len(feed.items) == 3  # the category-only item is skipped
    first, second, third = feed.items
    assert first == FeedItem(
        guid="post-1",
        title="APT & friends: new loader",
        link="https://blog.example.com/posts/apt-loader",
        published=datetime(2024, 1, 2, 15, 0, tzinfo=UTC),
        tags=("malware", "apt29"),
        html="<p>C2 at <b>198.51.100.7</b> &amp; evil.example</p>",
    )
    assert second.html == "<p>escaped <i>html</i></p>"
    assert second.published == datetime(2024, 1, 3, 6, 30, tzinfo=UTC)
    assert second.guid == second.link == "https://other.example.org/a?b=1"
    assert third.link == third.guid == "https://blog.example.com/posts/3"
    assert third.title == "" and third.html == "by guid"


def test_rss1_rdf() -> None:
    feed = parse_feed(RDF)
    assert (feed.title, feed.link) == ("RDF Feed", "https://rdf.example.net/")
    first, second = feed.items
    assert first.guid == "https://rdf.example.net/1"
    assert first.link == "https://rdf.example.net/posts/1"
    assert first.published == datetime(2024, 2, 1, 12, 0, tzinfo=UTC)
    assert first.tags == ("phishing",)
    assert first.html == "plain description"
    assert second.guid == "urn:rdf:2"
    assert second.html == "<p>rich</p>"
    assert second.published is None


def test_rss090_namespace() -> None:
    doc = b"""<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
      xmlns="http://my.netscape.com/rdf/simple/0.9/"><channel><title>Old</title>
      <link>http://old.example/</link></channel>
      <item><title>Legacy</title><link>http://old.example/1</link></item></rdf:RDF>"""
    feed = parse_feed(doc)
    assert feed.title == "Old"
    assert [(i.title, i.link) for i in feed.items] == [("Legacy", "http://old.example/1")]


def test_atom_content_kinds_and_categories() -> None:
    feed = parse_feed(ATOM)
    assert feed.title == "Atom & Co"
    assert feed.link == "https://atom.example.com/"
    html_entry, xhtml_entry, text_entry, summary_entry = feed.items
    assert html_entry.guid == "urn:entry:1"
    assert html_entry.link == "https://atom.example.com/entries/1"
    assert html_entry.published == datetime(2024, 3, 1, 9, 15, tzinfo=UTC)
    assert html_entry.tags == ("ransomware", "label only")
    assert html_entry.html == "<p>Hash <code>abc</code></p>"
    assert xhtml_entry.title == "XHTML title"
    assert xhtml_entry.link == "https://atom.example.com/entries/2"
    assert xhtml_entry.published == datetime(2024, 3, 2, 9, 0, tzinfo=UTC)
    assert xhtml_entry.html == '<p>Para <a href="/x">link</a><br></p> &amp; tail'
    assert "xmlns" not in xhtml_entry.html
    assert text_entry.html == "if a &lt; b &amp;&amp; c"
    assert summary_entry.html == "<em>sum</em>"


def test_atom_xml_base_and_self_only_feed() -> None:
    doc = b"""<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://x.example/blog/">
      <title>B</title><link rel="self" href="feed"/>
      <entry xml:base="2024/"><id>e</id><title>t</title><link href="post.html"/></entry></feed>"""
    feed = parse_feed(doc)
    assert feed.link == ""
    assert feed.items[0].link == "https://x.example/blog/2024/post.html"


def test_atom03_namespace() -> None:
    doc = b"""<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>Old atom</title>
      <link rel="alternate" type="text/html" href="http://a03.example/"/>
      <entry><title>e</title><id>tag:a03,1</id><issued>2004-05-06T07:08:09Z</issued>
      <content type="text/html" mode="escaped">&lt;b&gt;x&lt;/b&gt;</content></entry></feed>"""
    feed = parse_feed(doc)
    (entry,) = feed.items
    assert feed.link == "http://a03.example/"
    assert entry.published == datetime(2004, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert entry.html == "<b>x</b>"


def test_rss091_external_doctype_entities_stay_unexpanded_and_decode() -> None:
    doc = b"""<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
  "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>Caf&eacute; news</title><link>http://c.example/</link>
<item><title>Na&iuml;ve &amp; caf\xe9 &bogus;</title><link>http://c.example/1</link>
<description>&lt;b&gt;r&eacute;sum&eacute;&lt;/b&gt;</description></item>
</channel></rss>"""
    feed = parse_feed(doc)
    assert feed.title == "Caf\u00e9 news"
    assert feed.items[0].title == "Na\u00efve & caf\u00e9 &bogus;"
    assert feed.items[0].html == "<b>r\u00e9sum\u00e9</b>"


def test_items_without_title_link_and_content_are_skipped() -> None:
    feed = parse_feed(
        _rss("<item><pubDate>x</pubDate></item><item><description> </description></item>")
    )
    assert feed.items == ()


def test_guid_falls_back_to_stable_hash() -> None:
    items = "<item><title>No link</title><pubDate>Tue, 02 Jan 2024 10:00:00 GMT</pubDate></item>"
    first = parse_feed(_rss(items)).items[0]
    again = parse_feed(_rss(items)).items[0]
    assert len(first.guid) == 40 and first.guid == again.guid
    other = parse_feed(_rss(items.replace("No link", "Other"))).items[0]
    assert other.guid != first.guid


def test_results_are_immutable() -> None:
    feed = parse_feed(RSS2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        feed.items[0].title = "x"  # type: ignore[misc]


# --- links -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/abs/path", "https://base.example.com/abs/path"),
        ("rel/path?q=1", "https://base.example.com/dir/rel/path?q=1"),
        ("//cdn.example.net/x", "https://cdn.example.net/x"),
        ("  https://full.example/a  ", "https://full.example/a"),
        ("javascript:alert(1)", ""),
        ("data:text/html,hi", ""),
        ("http://[::1", ""),
    ],
)
def test_relative_links_resolved_against_channel_link(raw: str, expected: str) -> None:
    feed = parse_feed(_rss(f"<item><title>t</title><link>{escape(raw)}</link></item>"))
    assert feed.items[0].link == expected


def test_relative_link_without_base_is_dropped() -> None:
    feed = parse_feed(_rss("<item><title>t</title><link>/x</link></item>", channel_link=""))
    assert feed.link == "" and feed.items[0].link == ""


def test_rss_channel_without_link_uses_atom_self_as_base() -> None:
    doc = b"""<rss xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>T</title>
      <atom:link rel="self" href="https://s.example/feeds/all.xml"/>
      <item><title>t</title><link>post</link></item></channel></rss>"""
    feed = parse_feed(doc)
    assert feed.link == ""
    assert feed.items[0].link == "https://s.example/feeds/post"


# --- dates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Tue, 02 Jan 2024 10:00:00 GMT", datetime(2024, 1, 2, 10, tzinfo=UTC)),
        ("Tue, 02 Jan 2024 10:00:00 EST", datetime(2024, 1, 2, 15, tzinfo=UTC)),
        ("Tue, 02 Jan 2024 10:00:00 PDT", datetime(2024, 1, 2, 17, tzinfo=UTC)),
        ("02 Jan 2024 10:00 Z", datetime(2024, 1, 2, 10, tzinfo=UTC)),
        ("Tue, 02 Jan 2024 10:00:00 +0200", datetime(2024, 1, 2, 8, tzinfo=UTC)),
        ("Tue, 02 Jan 2024 10:00:00 -0000", datetime(2024, 1, 2, 10, tzinfo=UTC)),
        ("Tue, 02 Jan 24 10:00:00 UT", datetime(2024, 1, 2, 10, tzinfo=UTC)),
        ("2024-01-02T10:00:00Z", datetime(2024, 1, 2, 10, tzinfo=UTC)),
        ("2024-01-02t10:00:00z", datetime(2024, 1, 2, 10, tzinfo=UTC)),
        ("2024-01-02T10:00:00.123456+05:30", datetime(2024, 1, 2, 4, 30, 0, 123456, tzinfo=UTC)),
        ("2024-01-02T10:00:00", datetime(2024, 1, 2, 10, tzinfo=UTC)),
        ("2024-01-02 10:00:00-03:00", datetime(2024, 1, 2, 13, tzinfo=UTC)),
        ("2024-01-02", datetime(2024, 1, 2, tzinfo=UTC)),
        ("  2024-01-02T10:00:00Z\n", datetime(2024, 1, 2, 10, tzinfo=UTC)),
    ],
)
def test_parse_date_formats(raw: str, expected: datetime) -> None:
    parsed = parse_date(raw)
    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "yesterday",
        "Tue, 31 Feb 2024 10:00:00 GMT",
        "Tue, 02 Jan 99999 10:00:00 GMT",
        "2024-13-01",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2024-01-02T10:00:00Z" + " " * 100 + "x",
    ],
)
def test_unparseable_dates_are_none(raw: str | None) -> None:
    assert parse_date(raw) is None


def test_date_fallbacks_and_missing_dates_in_feeds() -> None:
    items = (
        "<item><title>a</title><pubDate>garbage</pubDate>"
        '<dc:date xmlns:dc="http://purl.org/dc/elements/1.1/">2024-05-05T05:05:05Z</dc:date></item>'
        "<item><title>b</title></item>"
    )
    first, second = parse_feed(_rss(items)).items
    assert first.published == datetime(2024, 5, 5, 5, 5, 5, tzinfo=UTC)
    assert second.published is None
    offset = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=3)))
    assert parse_date(offset.isoformat()) == offset


# --- hostile documents -------------------------------------------------------------------


def _xxe_documents(secret: Path) -> list[bytes]:
    uri = secret.as_uri().encode()
    return [
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "' + uri + b'">]>'
        b"<rss><channel><title>a&xxe;b</title><item><title>&xxe;</title>"
        b"<description>&xxe;</description></item></channel></rss>",
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY % p SYSTEM "' + uri + b'"> %p;]>'
        b"<rss><channel><title>t</title><item><title>x</title></item></channel></rss>",
        b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY xxe SYSTEM "' + uri + b'">]>'
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>&xxe;</title>'
        b'<entry><id>&xxe;</id><title>x</title><content type="html">&xxe;</content></entry></feed>',
    ]


def test_xxe_is_rejected_and_never_reads_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-4c1d", encoding="utf-8")
    docs = _xxe_documents(secret)
    docs += [doc.replace(b"?>", b"?><!-- \xe9 -->", 1) for doc in docs]  # lenient-retry path
    for doc in docs:
        with pytest.raises(FeedError, match="entit"):
            parse_feed(doc)


def test_external_dtd_is_not_loaded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.dtd"
    secret.write_text('<!ENTITY leak "TOP-SECRET-4c1d">', encoding="utf-8")
    doc = (
        b'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "' + secret.as_uri().encode() + b'">'
        b"<rss><channel><title>t &leak;</title><item><title>&leak;</title>"
        b"<link>http://e.example/</link></item></channel></rss>"
    )
    try:
        feed = parse_feed(doc)
    except FeedError:
        return
    assert "TOP-SECRET" not in _all_text(feed)


def _billion_laughs(levels: int = 10) -> bytes:
    decls = ['<!ENTITY lol0 "lol">']
    decls += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)]
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [{"".join(decls)}]>'
        f"<rss><channel><title>&lol{levels - 1};</title>"
        f"<item><title>&lol{levels - 1};</title><description>x</description></item>"
        "</channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    "doc",
    [
        _billion_laughs(),
        _billion_laughs().replace(b"?>", b"?><!-- \xe9 -->", 1),  # lenient-retry path
        b'<!DOCTYPE rss [<!ENTITY a "'
        + b"A" * 50_000
        + b'">]><rss><channel><title>'
        + b"&a;" * 50_000
        + b"</title></channel></rss>",
    ],
    ids=["billion-laughs", "billion-laughs-recover", "quadratic-blowup"],
)
def test_entity_expansion_attacks_are_cheap(doc: bytes) -> None:
    started = time.perf_counter()
    try:
        feed = parse_feed(doc)
    except FeedError:
        pass
    else:
        assert "lollol" not in _all_text(feed) and "AAAAAAAAAA" not in _all_text(feed)
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    "doc",
    [
        b"<rss><channel><title>open",
        b"<rss><channel><title>x</channel></rss>",
        b"<rss><channel><title>a & b</title></channel></rss>",
        "<rss><channel><title>a\x01b</title></channel></rss>".encode("utf-16"),
        b"<rss><channel><title>&undefined;</title></channel></rss>",
    ],
)
def test_malformed_xml_raises_feed_error(doc: bytes) -> None:
    with pytest.raises(FeedError, match="malformed XML"):
        parse_feed(doc)


@pytest.mark.parametrize(
    "doc",
    [
        b"",
        b"   \n\t",
        b"\xef\xbb\xbf",
        b'{"items": []}',
        b"plain text",
        b"<!DOCTYPE html><html><head><meta charset=utf-8><title>x</title></head><body><p>hi</body></html>",
        b"<html lang=en><body>Not found</body></html>",
        b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body/></html>',
        b"<opml><body/></opml>",
        b'<entry xmlns="http://www.w3.org/2005/Atom"><title>x</title></entry>',
        b"<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'/>",
        b"<rss version='2.0'/>",
    ],
)
def test_non_feeds_raise_feed_error(doc: bytes) -> None:
    with pytest.raises(FeedError) as info:
        parse_feed(doc)
    assert "\n" not in str(info.value)


def test_html_page_message() -> None:
    page = b"<!doctype html>\n<html><head><title>Blog</title></head><body></body></html>"
    with pytest.raises(FeedError, match="not an RSS or Atom feed"):
        parse_feed(page)


def test_oversized_input_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeds, "MAX_FEED_BYTES", 100)
    with pytest.raises(FeedError, match="larger"):
        parse_feed(RSS2)


def test_only_bytes_are_accepted() -> None:
    with pytest.raises(TypeError):
        parse_feed("/etc/passwd")  # type: ignore[arg-type]
    assert parse_feed(bytearray(RSS2)) == parse_feed(memoryview(RSS2)) == parse_feed(RSS2)


# --- encodings ---------------------------------------------------------------------------


def test_wrong_declared_encoding_is_recovered_as_windows_1252() -> None:
    text = '<?xml version="1.0" encoding="utf-8"?><rss><channel><title>Caf\u00e9 \u20ac</title>'
    text += "<item><title>Na\u00efve \u201cquote\u201d</title><link>http://e.example/</link></item>"
    feed = parse_feed((text + "</channel></rss>").encode("cp1252"))
    assert feed.title == "Caf\u00e9 \u20ac"
    assert feed.items[0].title == "Na\u00efve \u201cquote\u201d"


def test_undeclared_latin1_is_recovered() -> None:
    doc = "<rss><channel><title>Stra\u00dfe</title></channel></rss>".encode("latin-1")
    assert parse_feed(doc).title == "Stra\u00dfe"


def test_unknown_encoding_label_with_utf8_bytes() -> None:
    doc = '<?xml version="1.0" encoding="x-bogus-9"?><rss><channel><title>\u00fcber</title>'
    feed = parse_feed((doc + "</channel></rss>").encode("utf-8"))
    assert feed.title == "\u00fcber"


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16", "utf-16-be", "iso-8859-7"])
def test_declared_encodings_and_boms_are_honoured(codec: str) -> None:
    label = "utf-8" if codec == "utf-8-sig" else codec
    text = f'<?xml version="1.0" encoding="{label}"?><rss><channel><title>\u03b1\u03b2</title>'
    data = (text + "</channel></rss>").encode(codec)
    if codec == "utf-16-be":
        data = b"\xfe\xff" + data
    assert parse_feed(data).title == "\u03b1\u03b2"


def test_leading_whitespace_before_declaration_is_tolerated() -> None:
    assert parse_feed(b"\n\n  " + RSS2).title == "Example Threat Blog"
    assert parse_feed(b"\xef\xbb\xbf\n" + RSS2).title == "Example Threat Blog"


# --- properties --------------------------------------------------------------------------


def _mutations() -> st.SearchStrategy[bytes]:
    seeds = st.sampled_from([RSS2, RDF, ATOM, _billion_laughs(3)])

    def mutate(seed: bytes, cut: int, at: int, junk: bytes) -> bytes:
        at %= len(seed)
        return (seed[:at] + junk + seed[at + len(junk) :])[: max(cut, 1) * 64]

    return st.builds(
        mutate, seeds, st.integers(0, 200), st.integers(0, 10**6), st.binary(max_size=8)
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=512), _mutations()))
def test_parse_feed_only_raises_feed_error(data: bytes) -> None:
    try:
        feed = parse_feed(data)
    except FeedError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(feed, Feed)


def _xml_char(char: str) -> bool:
    code = ord(char)
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or code >= 0x10000
    )


XML_TEXT = st.text(st.characters(codec="utf-8").filter(_xml_char), max_size=80)


def _xml_escape(text: str) -> str:
    return escape(text).replace("\r", "&#13;")


@settings(max_examples=200, deadline=None)
@given(XML_TEXT, XML_TEXT)
def test_rss_titles_round_trip(channel_title: str, item_title: str) -> None:
    doc = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{_xml_escape(channel_title)}</title><link>https://r.example/</link>"
        f"<item><title>{_xml_escape(item_title)}</title><link>/i</link></item></channel></rss>"
    )
    feed = parse_feed(doc.encode("utf-8"))
    assert feed.title == " ".join(channel_title.split())
    assert feed.items[0].title == " ".join(item_title.split())


@settings(max_examples=200, deadline=None)
@given(XML_TEXT, XML_TEXT, XML_TEXT, XML_TEXT, XML_TEXT)
def test_arbitrary_field_values_never_crash(
    link: str, date: str, category: str, guid: str, body: str
) -> None:
    items = (
        f"<item><title>t</title><link>{_xml_escape(link)}</link>"
        f"<pubDate>{_xml_escape(date)}</pubDate><category>{_xml_escape(category)}</category>"
        f"<guid>{_xml_escape(guid)}</guid><description>{_xml_escape(body)}</description></item>"
    )
    (item,) = parse_feed(_rss(items, channel_link=_xml_escape(link))).items
    assert item.link == "" or item.link.startswith(("http://", "https://"))
    assert item.published is None or item.published.tzinfo is UTC
    assert all(tag == tag.lower().strip() and tag for tag in item.tags)


def test_rss_item_with_a_bare_content_element_and_a_go_nil_description() -> None:
    # Some Hugo themes write the body as <content type="html"> in RSS 2.0 and print
    # Go's "%!s(<nil>)" as the description.
    body = escape("<p>C2 at <code>77.91.124.55</code></p>")
    doc = (
        '<rss version="2.0"><channel><title>t</title><link>https://b.example/</link>'
        "<item><title>a</title><link>https://b.example/a</link>"
        f'<description>%!s(&lt;nil&gt;)</description><content type="html">{body}</content>'
        "</item><item><title>b</title><link>https://b.example/b</link>"
        "<description>%!s(&lt;nil&gt;)</description></item></channel></rss>"
    ).encode()
    first, second = parse_feed(doc).items
    assert first.html == "<p>C2 at <code>77.91.124.55</code></p>"
    assert second.html == ""


@pytest.mark.parametrize(
    "dirty",
    ["\x04\x10", "&#4;", "&#x1F;&#X0b;", "\x01&#0;\x1b", "&#31;\x00"],
)
def test_forbidden_control_characters_are_dropped_not_fatal(dirty: str) -> None:
    # XML 1.0 forbids C0 controls other than tab, LF and CR; generators copy them from
    # pasted tool output, and refusing the document would lose every item in it.
    doc = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        "<link>https://b.example/</link><item><title>strings</title>"
        f"<link>https://b.example/a</link><description>&lt;pre&gt;A{dirty}A&#9;&#10;"
        "checkip.amazonaws.com C2 91.92.248.167&lt;/pre&gt;</description></item>"
        f"<item><title>next{dirty}</title><link>https://b.example/b</link></item></channel></rss>"
    ).encode()
    first, second = parse_feed(doc).items
    assert first.html == "<pre>AA\t\ncheckip.amazonaws.com C2 91.92.248.167</pre>"
    assert second.title == "next"


def test_real_jekyll_feed_with_control_characters_keeps_every_entry() -> None:
    path = Path(__file__).parent / "data" / "extraction" / "feeds" / "glassdfir-jekyll.xml"
    data = path.read_bytes()
    assert b"\x04" in data  # the published file, unchanged
    items = parse_feed(data).items
    assert [item.title for item in items] == [
        "BotTricker",
        "Analysis of Fiesta EK",
        "Hacking BRBBot",
    ]
    assert "209.239.112.229" in items[1].html


def test_real_hugo_feed_with_bare_content_gives_full_bodies() -> None:
    path = Path(__file__).parent / "data" / "extraction" / "feeds" / "iloveforensics-hugo.xml"
    items = parse_feed(path.read_bytes()).items
    assert len(items) == 5
    assert any("thepowershellhacker" in item.html for item in items)
