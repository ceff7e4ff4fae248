"""Turn an article's HTML into plain text lines suited to indicator extraction.

Block elements end lines, cells of one table row are joined with `` | `` so they
never merge, ``<pre>``/``<code>`` blocks keep their line breaks, scripts and
styles are dropped and entities are decoded. Parsing never touches the network
and never raises: garbage input yields best-effort text.
"""

from __future__ import annotations

import html as htmllib
import re
from urllib.parse import parse_qsl, unquote

from lxml import etree
from lxml import html as lxml_html

from generator.extract.refang import refang_token

__all__ = ["html_to_text", "link_targets"]

_DROP = frozenset({"script", "style", "noscript", "template", "head", "iframe", "object", "svg"})
_BLOCK = frozenset(
    {
        "p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "pre", "blockquote",
        "section", "article", "table", "ul", "ol", "dl", "dt", "dd", "header", "footer",
        "nav", "aside", "main", "figure", "figcaption", "hr", "form", "address", "details",
        "summary", "thead", "tbody", "tfoot", "caption", "fieldset", "body", "html",
    }
)  # fmt: skip
_CELLS = frozenset({"td", "th"})
_KEEP_BREAKS = frozenset({"pre", "code", "textarea", "xmp", "listing", "plaintext"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WS = re.compile(r"\s+")
_FALLBACK_DROP = re.compile(r"(?is)<(script|style|noscript)\b.*?(?:</\1\s*>|\Z)")
_FALLBACK_BREAK = re.compile(
    r"(?i)<(?:br|/?(?:p|div|li|tr|h[1-6]|pre|table|section|article))\b[^>]*>"
)
_FALLBACK_TAG = re.compile(r"<[^>]*>")
# Links a page marks as its own furniture: tag and category pages, the author, the
# permalink, the licence, the comments.
_FURNITURE_REL = frozenset(
    {"tag", "author", "bookmark", "category", "license", "me", "replies", "edit"}
)
# Absolute links a reader could follow, defanged schemes included (hxxps://, hxxp[:]//).
_LINK_SCHEME = re.compile(r"(?:https?|hxxps?|ftp|fxp)(?::|\[:\])//")
# The page's own furniture: links in its header, footer, navigation and side bars, and in
# blocks its class or id names as such (share buttons, author boxes, related posts), are
# never read (their text still is).
_FURNITURE_TAGS = frozenset({"header", "footer", "nav", "aside"})
_FURNITURE_CLASS = re.compile(
    r"(?i)footer|share|sharing|social|sidebar|navbar|\bnav\b|menu|breadcrumb|related|comments?\b"
    r"|author|byline|copyright|subscribe|newsletter|widget"
)
_STATE_PREFIXES = ("has-", "with-", "no-", "is-", "enable")
# Elements that hold a whole page or article whatever their classes say.
_CONTAINERS = frozenset({"html", "body", "main", "article"})
_SCHEME_PREFIX = re.compile(r"(?i)^[a-z]+(?::|\[:\])//")


class _Writer:
    """Accumulates text fragments while tracking <pre> and table-cell nesting."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.keep_breaks = 0
        self.in_cell = 0
        self.row_cells: list[int] = []

    def text(self, value: str | None) -> None:
        if not value:
            return
        if self.keep_breaks:
            self.parts.append(value.replace("\r\n", "\n").replace("\r", "\n"))
        else:
            self.parts.append(_WS.sub(" ", value))

    def newline(self) -> None:
        self.parts.append(" " if self.in_cell else "\n")

    def start(self, tag: str) -> None:
        if tag == "tr":
            self.row_cells.append(0)
        if tag in _CELLS:
            if self.row_cells:
                if self.row_cells[-1]:
                    self.parts.append(" | ")
                self.row_cells[-1] += 1
            else:
                self.parts.append(" ")
            self.in_cell += 1
        elif tag in _BLOCK or tag == "br":
            self.newline()
        if tag in _KEEP_BREAKS:
            self.keep_breaks += 1

    def end(self, tag: str) -> None:
        if tag in _KEEP_BREAKS:
            self.keep_breaks -= 1
        if tag in _CELLS:
            self.in_cell = max(0, self.in_cell - 1)
        elif tag == "tr":
            if self.row_cells:
                self.row_cells.pop()
            self.newline()
        elif tag in _BLOCK:
            self.newline()

    def result(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).split("\n"))
        return "\n".join(line for line in lines if line)


def _parse(data: bytes) -> etree._Element:
    parser = lxml_html.HTMLParser(
        encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True, huge_tree=True
    )
    return lxml_html.document_fromstring(data, parser=parser)


def link_targets(href: str, rel: str = "") -> list[str]:
    """What a link's ``href`` names that a reader of the text does not see: absolute
    ``http(s)``/``ftp`` URLs (defanged ones too) and ``mailto:`` addresses.

    Nothing for relative links and fragments (the page's own site), ``javascript:``,
    ``tel:`` and ``data:`` links, or links the page marks as its own furniture
    (``rel`` ``tag``, ``author``, ``bookmark``, ``category``, ``license``, ``me``,
    ``replies``, ``edit``). A link whose query names another URL (a share button, a
    redirector) gives that URL instead of its own: ``https://twitter.com/intent/tweet?url=…``
    names the article, which the source's own domains then drop, and
    ``https://www.google.com/url?q=…`` names where it leads.
    """
    href = href.strip()
    if not href or _FURNITURE_REL.intersection(rel.lower().split()):
        return []
    lowered = href.lower()
    if lowered.startswith("mailto:"):
        address = unquote(href[7:].split("?", 1)[0]).strip()
        return [address] if "@" in address else []
    if lowered.startswith("//"):
        href, lowered = "https:" + href, "https:" + lowered
    if not _LINK_SCHEME.match(lowered):
        return []
    query = href.partition("?")[2].partition("#")[0]
    if "://" in query or "%3a%2f%2f" in query.lower():
        inner = [
            value.strip()
            for _, value in parse_qsl(query, keep_blank_values=False)
            if _LINK_SCHEME.match(value.strip().lower())
        ]
        if inner:
            return inner
    return [href]


def _shown(target: str, visible: str, fanged: str) -> bool:
    """The link's text already shows ``target`` (as written, or without its scheme, its
    ``www.`` or its trailing slash, defanged or not). ``fanged`` is the text refanged and
    lowercased."""
    if target in visible:
        return True
    bare = _SCHEME_PREFIX.sub("", refang_token(target)).removeprefix("www.").rstrip("/").lower()
    return bool(bare) and bare in fanged


def _furniture_names(el: etree._Element) -> bool:
    """The element's class or id names page furniture (``sharedaddy``, ``site-footer``,
    ``related-posts``); state classes such as ``has-sidebar`` do not count."""
    names = f"{el.get('class') or ''} {el.get('id') or ''}".split()
    return any(
        _FURNITURE_CLASS.search(name) and not name.lower().startswith(_STATE_PREFIXES)
        for name in names
    )


def _walk(root: etree._Element) -> str:
    out = _Writer()
    links: list[tuple[int, list[str]]] = []  # per open <a>: where its text starts, targets
    furniture: list[etree._Element] = []  # open elements that are the page's furniture
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, el in walker:
        tag = el.tag.lower() if isinstance(el.tag, str) else ""
        if event == "start":
            if tag in _DROP:
                walker.skip_subtree()
                continue
            if tag in _FURNITURE_TAGS or (tag not in _CONTAINERS and _furniture_names(el)):
                furniture.append(el)
            if tag == "a":
                href = "" if furniture else el.get("href") or ""
                links.append((len(out.parts), link_targets(href, el.get("rel") or "")))
            out.start(tag)
            out.text(el.text)
        else:
            if tag not in _DROP:
                out.end(tag)
            if furniture and furniture[-1] is el:
                furniture.pop()
            if tag == "a" and links:
                first, targets = links.pop()
                if targets:
                    visible = "".join(out.parts[first:])
                    fanged = refang_token(visible).lower()
                    shown = {target for target in targets if _shown(target, visible, fanged)}
                    out.parts += [f" {target} " for target in targets if target not in shown]
            out.text(el.tail)
    return out.result()


def _sub_tags(pattern: re.Pattern[str], repl: str, text: str) -> str:
    """``pattern.sub(repl, text)`` for a tag pattern whose matches end at a ``>``.

    No match starts after the last ``>``, so that tail is left out of the scan: there
    each ``<`` would have the engine read on to the end of the text for a ``>`` (a run of
    ``<br`` without one was quadratic). Before it, each match ends at the first ``>``
    after its ``<`` and the scan goes on from there: linear time.
    """
    end = text.rfind(">") + 1
    return pattern.sub(repl, text[:end]) + text[end:]


def _fallback(markup: str) -> str:
    text = _FALLBACK_DROP.sub(" ", markup)
    text = _sub_tags(_FALLBACK_BREAK, "\n", text)
    text = htmllib.unescape(_sub_tags(_FALLBACK_TAG, " ", text))
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def html_to_text(html: str) -> str:
    """Return the visible text of ``html``: one line per block, cells joined by `` | ``."""
    if not html or not html.strip():
        return ""
    cleaned = _CONTROL.sub(" ", html)
    data = cleaned.encode("utf-8", "replace")
    try:
        text = _walk(_parse(data))
    except Exception:  # any parser failure falls back to regex stripping
        text = ""
    if text:
        return text
    # Nothing came out: libxml2 gives up on absurdly deep nesting, for instance.
    try:
        return _fallback(data.decode("utf-8", "replace"))
    except Exception:  # best effort: never raise
        return ""
