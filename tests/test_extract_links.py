"""Indicators named only in a link's ``href`` are read; the source's own links are not.

The item below has the shape WordPress and Ghost feeds give their ``content:encoded``:
share buttons, tag and author links, the "appeared first on" footer, a VirusTotal link and
links whose text is not their target.
"""

from __future__ import annotations

import pytest

from generator.extract.htmltext import html_to_text, link_targets
from generator.ingest.pipeline import read_article
from generator.sources.catalog import Source
from generator.sources.feeds import parse_feed

SHA256 = "4c1dc737915d76b7ce579abddaba74ead6fdb5b519a1ea45308b8c49b950655c"

ITEM_HTML = f"""
<div class="entry-content">
<p>The first stage is a shortcut that runs <code>mshta</code> against
<a href="hxxps://cdn-docview[.]online/v/inv.hta" rel="nofollow noopener">the HTA page</a>,
which pulls <a href="http://91.215.85.147/bin/upd.exe">the loader</a> and reports to
<a href="https://telemetry-sync.top/api/v2/ping">its panel</a>. The sample is on
<a href="https://www.virustotal.com/gui/file/{SHA256}/detection">VirusTotal</a>; the actor's
mailbox <a href="mailto:billing@invoice-desk.cc">was also used</a> for the lures. Our
<a href="https://labs.blueshield-sec.com/reports/hta-loaders/">earlier report</a> and
<a href="/2026/11/hta-part-1/">part one</a> have the background, and Microsoft's
<a href="https://learn.microsoft.com/en-us/windows/win32/shell/links">documentation</a>
explains shortcuts.</p>
<p>Tags: <a href="https://labs.blueshield-sec.com/tag/loader/" rel="tag">loader</a>
<a href="https://labs.blueshield-sec.com/author/kim/" rel="author">Kim</a></p>
<div class="sharedaddy">
<a href="https://twitter.com/intent/tweet?text=HTA%20loaders&amp;url=https%3A%2F%2Flabs.blueshield-sec.com%2F2026%2F12%2Fhta-loaders%2F">Share on X</a>
<a href="https://www.linkedin.com/shareArticle?mini=true&amp;url=https%3A%2F%2Flabs.blueshield-sec.com%2F2026%2F12%2Fhta-loaders%2F">LinkedIn</a>
<a href="https://t.me/share/url?url=https%3A%2F%2Flabs.blueshield-sec.com%2F2026%2F12%2Fhta-loaders%2F&amp;text=HTA">Telegram</a>
<a href="https://news.ycombinator.com/submitlink?u=https%3A%2F%2Flabs.blueshield-sec.com%2F2026%2F12%2Fhta-loaders%2F">HN</a>
<a href="mailto:?subject=HTA%20loaders&amp;body=https%3A%2F%2Flabs.blueshield-sec.com%2F2026%2F12%2Fhta-loaders%2F">Email</a>
</div>
<p>The post <a href="https://labs.blueshield-sec.com/2026/12/hta-loaders/" rel="bookmark">HTA
loaders</a> appeared first on <a href="https://labs.blueshield-sec.com">Blueshield Labs</a>.</p>
</div>
"""

FEED = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Blueshield Labs</title><link>https://labs.blueshield-sec.com</link>
<item><title>HTA loaders</title>
<link>https://labs.blueshield-sec.com/2026/12/hta-loaders/</link>
<guid>https://labs.blueshield-sec.com/?p=4411</guid>
<pubDate>Mon, 07 Dec 2026 09:00:00 +0000</pubDate>
<description>Shortcuts and HTA pages.</description>
<content:encoded><![CDATA[{ITEM_HTML}]]></content:encoded></item>
</channel></rss>"""


def test_link_targets_read_from_a_real_shaped_feed_item() -> None:
    item = parse_feed(FEED.encode()).items[0]
    source = Source(
        "blueshield", "Blueshield Labs", "https://labs.blueshield-sec.com/feed/", "vendor"
    )
    _, sightings = read_article(source, item, 0)
    found = {(s.type, s.value) for s in sightings}
    assert found == {
        ("url", "https://cdn-docview.online/v/inv.hta"),
        ("url", "http://91.215.85.147/bin/upd.exe"),
        ("ipv4", "91.215.85.147"),
        ("url", "https://telemetry-sync.top/api/v2/ping"),
        ("sha256", SHA256),
        ("email", "billing@invoice-desk.cc"),
    }
    defanged = {s.value: s.defanged for s in sightings}
    assert defanged["https://cdn-docview.online/v/inv.hta"] is True
    assert defanged["http://91.215.85.147/bin/upd.exe"] is False


def test_a_link_whose_text_shows_its_target_is_read_once() -> None:
    text = html_to_text(
        '<p>C2: <a href="https://relay-cdn.live/gate">https://relay-cdn.live/gate</a>, '
        '<a href="https://www.relay-cdn.live/">relay-cdn.live</a></p>'
    )
    assert text == "C2: https://relay-cdn.live/gate, relay-cdn.live"


def test_links_in_page_furniture_are_not_read() -> None:
    page = (
        '<html><body class="single-post has-sidebar"><header><a href="https://cdn.themes.top/">'
        'Theme</a></header><article class="post"><p>It beacons to <a href="https://gate-sync.top/b">'
        'its gate</a>.</p><div class="share-buttons"><a href="https://vk.com/share.php?url='
        'https%3A%2F%2Fother-blog.top%2Fp">VK</a></div><div id="related-posts">'
        '<a href="https://other-blog.top/older">Older</a></div></article><footer>Powered by '
        '<a href="https://jekyllrb.com" rel="nofollow">Jekyll</a></footer></body></html>'
    )
    text = html_to_text(page)
    assert "https://gate-sync.top/b" in text
    for furniture in ("cdn.themes.top", "other-blog.top", "jekyllrb.com"):
        assert furniture not in text


@pytest.mark.parametrize(
    ("href", "rel", "expected"),
    [
        ("http://91.215.85.147/x", "", ["http://91.215.85.147/x"]),
        ("hxxp[:]//evil[.]top/x", "nofollow", ["hxxp[:]//evil[.]top/x"]),
        ("//cdn-evil.top/a.js", "", ["https://cdn-evil.top/a.js"]),
        ("/2026/12/post/", "", []),
        ("#comments", "", []),
        ("javascript:void(0)", "", []),
        ("tel:+15550100", "", []),
        ("https://blog.example.org/tag/apt/", "tag", []),
        ("https://blog.example.org/author/kim/", "author", []),
        ("mailto:ops@evil-mail.top?subject=hi", "", ["ops@evil-mail.top"]),
        ("mailto:?subject=read&body=https%3A%2F%2Fblog.example.org%2Fp", "", []),
        (
            "https://www.facebook.com/sharer/sharer.php?u=https%3A%2F%2Fblog.example.org%2Fp",
            "",
            ["https://blog.example.org/p"],
        ),
        (
            "https://www.google.com/url?q=https://evil-redirect.top/p&sa=D",
            "",
            ["https://evil-redirect.top/p"],
        ),
    ],
)
def test_link_targets(href: str, rel: str, expected: list[str]) -> None:
    assert link_targets(href, rel) == expected
