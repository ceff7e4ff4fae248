"""Safe parsing of RSS 0.9x/2.0, RSS 1.0 (RDF) and Atom documents given as bytes.

Entity policy: the parser never loads DTDs, never uses the network and never substitutes
entities. A document whose DOCTYPE declares any entity (general or parameter) is rejected
with FeedError, which stops XXE and billion-laughs/quadratic-blowup documents (libxml2's
amplification guard usually stops the latter first). A DOCTYPE that only names an external
DTD, as RSS 0.91 feeds do, is accepted: the DTD is not fetched, references such as
``&eacute;`` stay unexpanded and are decoded as HTML named entities in extracted text.
Work is bounded by MAX_FEED_BYTES and libxml2's default limits (huge_tree=False).
"""

import copy
import hashlib
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import cast
from urllib.parse import urljoin, urlsplit

from lxml import etree

from generator.errors import SocdefError

MAX_FEED_BYTES = 32 * 1024 * 1024

_RSS1 = "http://purl.org/rss/1.0/"
_RSS090 = "http://my.netscape.com/rdf/simple/0.9/"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_ATOM = "http://www.w3.org/2005/Atom"
_ATOM03 = "http://purl.org/atom/ns#"
_CONTENT = "http://purl.org/rss/1.0/modules/content/"
_DC = "http://purl.org/dc/elements/1.1/"
_XHTML = "http://www.w3.org/1999/xhtml"
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"

_ERR = etree.ErrorTypes
_ENCODING_ERRORS = frozenset(
    (_ERR.ERR_INVALID_ENCODING, _ERR.ERR_UNKNOWN_ENCODING, _ERR.ERR_UNSUPPORTED_ENCODING)
)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
# C0 controls XML 1.0 forbids (all but tab, LF, CR), raw or as character references.
# Generators copy them from pasted tool output; feed readers drop them.
_FORBIDDEN_CONTROLS = re.compile(
    rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|&#(?:0*(?:[0-8]|1[1-2]|1[4-9]|2\d|3[01])|[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]));"
)
_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_HTML_START = re.compile(rb"<(?:!doctype\s+html|html[\s>])", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_MAX_DATE_CHARS = 80


@dataclass(frozen=True, slots=True)
class FeedItem:
    guid: str  # guid/id/rdf:about, else link, else sha1 of title + published
    title: str  # plain text, whitespace collapsed
    link: str  # absolute http(s) URL of the article, '' if none
    published: datetime | None  # aware UTC
    tags: tuple[str, ...]  # categories/terms, lowercased, unique, in document order
    html: str  # richest body: content:encoded > atom:content > bare <content> > description/summary


@dataclass(frozen=True, slots=True)
class Feed:
    title: str
    link: str
    items: tuple[FeedItem, ...]


class FeedError(SocdefError, ValueError):
    """The document is malformed or is not a supported RSS/Atom feed."""


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _rss(name: str) -> tuple[str, ...]:
    return (name, _q(_RSS1, name), _q(_RSS090, name))


def _atom(name: str) -> tuple[str, ...]:
    return (_q(_ATOM, name), _q(_ATOM03, name))


_TITLE = (*_rss("title"), *_atom("title"), _q(_DC, "title"))
_LINK = _rss("link")
_GUID = (*_rss("guid"), *_atom("id"))
_DATES = (
    "pubDate",
    *_atom("published"),
    *_atom("updated"),
    _q(_ATOM03, "issued"),
    _q(_ATOM03, "modified"),
    _q(_DC, "date"),
)
_BODIES = (
    _q(_CONTENT, "encoded"),
    *_atom("content"),
    "content",  # RSS 2.0 items of some Hugo themes: a bare <content type="html">
    *_rss("description"),
    *_atom("summary"),
    _q(_DC, "description"),
)
# Go's fmt marker for a missing value, which some templates write as the description.
_GO_FORMAT_ERROR = re.compile(r"%!\w\([^()]*\)")
_CATEGORY = frozenset(_rss("category"))
_ATOM_CATEGORY = frozenset(_atom("category"))
_SUBJECT = _q(_DC, "subject")
_ATOM_KINDS = {  # Atom 1.0 type values plus the media types Atom 0.3 used
    "text": "text",
    "html": "html",
    "text/html": "html",
    "xhtml": "xhtml",
    "application/xhtml+xml": "xhtml",
}
_ATOM_PREFIXES = (f"{{{_ATOM}}}", f"{{{_ATOM03}}}")


def parse_feed(data: bytes) -> Feed:
    """Parse an RSS or Atom document; raise :class:`FeedError` if it is bad or unsupported."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"parse_feed() takes bytes, not {type(data).__name__}")
    root = _parse(_trim(bytes(data)))
    _reject_entity_declarations(root)
    return _build(root)


def _parser(*, recover: bool, encoding: str | None = None) -> etree.XMLParser:
    return etree.XMLParser(
        encoding=encoding,
        recover=recover,
        resolve_entities=False,  # entity references stay as nodes, never substituted
        no_network=True,
        load_dtd=False,
        huge_tree=False,  # keep libxml2's depth, text-size and amplification limits
        remove_comments=True,
        remove_pis=True,
    )


def _trim(data: bytes) -> bytes:
    """Refuse empty, oversized or obviously non-XML input; drop leading whitespace."""
    if len(data) > MAX_FEED_BYTES:
        raise FeedError(f"feed larger than {MAX_FEED_BYTES} bytes")
    if data.startswith(_BOMS[1:]) or b"\x00" in data[:4]:
        return data  # UTF-16/32: leave detection to libxml2
    bom = _BOMS[0] if data.startswith(_BOMS[0]) else b""
    body = data[len(bom) :].lstrip()
    if not body:
        raise FeedError("not an RSS or Atom feed: empty document")
    if not body.startswith(b"<"):
        raise FeedError("not an RSS or Atom feed: no XML markup")
    if _HTML_START.match(body):
        raise FeedError("not an RSS or Atom feed: looks like an HTML page")
    return bom + body


def _parse(data: bytes) -> etree._Element:
    try:
        root = etree.fromstring(data, _parser(recover=False))
    except (etree.LxmlError, ValueError) as exc:
        code = getattr(exc, "code", None)
        if code == _ERR.ERR_INVALID_CHAR and not _wide_encoding(data):
            cleaned = _FORBIDDEN_CONTROLS.sub(b"", data)
            if cleaned != data:  # a forbidden control character: drop them all, parse again
                return _parse(cleaned)
        if code not in _ENCODING_ERRORS:
            raise FeedError(f"malformed XML: {_one_line(exc)}") from None
        # The declared encoding is wrong or unknown: one lenient retry.
        try:
            root = etree.fromstring(data, _parser(recover=True, encoding=_fallback_encoding(data)))
        except (etree.LxmlError, ValueError) as retry_exc:
            raise FeedError(f"undecodable document: {_one_line(retry_exc)}") from None
    if root is None:
        raise FeedError("not an RSS or Atom feed: no root element")
    return root


def _wide_encoding(data: bytes) -> bool:
    """UTF-16 or UTF-32, where a zero or control byte is part of a character."""
    return data.startswith(_BOMS[1:]) or b"\x00" in data[:4]


def _fallback_encoding(data: bytes) -> str | None:
    """Mislabelled feeds are nearly always Windows-1252 sent as (or defaulting to) UTF-8."""
    if data.startswith(_BOMS):
        return None
    match = _DECLARED_ENCODING.match(data[:512])
    declared = match.group(1).decode("ascii").lower() if match else "utf-8"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "windows-1252" if declared in ("utf-8", "utf8") else None
    return "utf-8"  # valid UTF-8 under a wrong or unknown label


def _reject_entity_declarations(root: etree._Element) -> None:
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and next(iter(dtd.iterentities()), None) is not None:
        raise FeedError("DOCTYPE declares entities; entity declarations are not allowed")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def _build(root: etree._Element) -> Feed:
    tag = root.tag if isinstance(root.tag, str) else ""
    if tag in _atom("feed"):
        return _assemble(root, list(_children(root, _atom("entry"))), _xml_base(root, ""))
    if tag not in ("rss", _q(_RDF, "RDF")):
        name = tag.rpartition("}")[2] or "?"
        raise FeedError(f"not an RSS or Atom feed: root element is <{name}>")
    channel = next(_children(root, _rss("channel")), None)
    if channel is None:
        raise FeedError("RSS document without a <channel> element")
    # RSS 2.0 nests items in the channel; RSS 1.0/0.90 makes them its siblings.
    items = [*_children(root, _rss("item")), *_children(channel, _rss("item"))]
    return _assemble(channel, items, "")


def _assemble(channel: etree._Element, items: list[etree._Element], base: str) -> Feed:
    link = _absolute(_text_of(channel, _LINK) or _atom_link(channel, "alternate"), base)
    item_base = base or link or _absolute(_atom_link(channel, "self"), "")
    parsed = tuple(item for item in (_item(el, item_base) for el in items) if item is not None)
    return Feed(title=_plain(_first(channel, _TITLE)), link=link, items=parsed)


def _item(element: etree._Element, base: str) -> FeedItem | None:
    base = _xml_base(element, base)
    title = _plain(_first(element, _TITLE))
    link = _item_link(element, base)
    body = _body(element)
    if not (title or link or body.strip()):
        return None
    published = _published(element)
    return FeedItem(
        guid=_guid(element, link, title, published, body),
        title=title,
        link=link,
        published=published,
        tags=_tags(element),
        html=body,
    )


def _item_link(element: etree._Element, base: str) -> str:
    link = _absolute(_text_of(element, _LINK) or _atom_link(element, "alternate"), base)
    if link:
        return link
    guid = _first(element, _rss("guid"))
    if guid is not None and guid.get("isPermaLink", "true").strip().lower() != "false":
        return _absolute(_text(guid), base)
    return ""


def _atom_link(element: etree._Element, rel: str) -> str:
    """href of the best Atom link with this rel; for alternates prefer an HTML page."""
    links = [
        link
        for link in _children(element, _atom("link"))
        if (link.get("rel") or "alternate").strip().lower() == rel and link.get("href")
    ]
    html_types = ("", "text/html", "application/xhtml+xml")
    preferred = [link for link in links if (link.get("type") or "").strip().lower() in html_types]
    chosen = (preferred or links)[:1]
    return chosen[0].get("href", "") if chosen else ""


def _guid(
    element: etree._Element, link: str, title: str, published: datetime | None, body: str
) -> str:
    guid = _text_of(element, _GUID) or (element.get(_q(_RDF, "about")) or "").strip()
    if guid or link:
        return guid or link
    stamp = published.isoformat() if published else ""
    seed = title + stamp if title or stamp else body
    return hashlib.sha1(seed.encode("utf-8"), usedforsecurity=False).hexdigest()


def _published(element: etree._Element) -> datetime | None:
    for tag in _DATES:
        for child in _children(element, (tag,)):
            parsed = parse_date(_text(child))
            if parsed is not None:
                return parsed
    return None


def _tags(element: etree._Element) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag in _ATOM_CATEGORY:
            value = child.get("term") or child.get("label") or ""
        elif tag in _CATEGORY or tag == _SUBJECT:
            value = _text(child)
        else:
            continue
        label = _collapse(value).lower()
        if label:
            seen.setdefault(label, None)
    return tuple(seen)


def _body(element: etree._Element) -> str:
    for tag in _BODIES:
        for child in _children(element, (tag,)):
            body = _markup(child)
            if body.strip() and not _GO_FORMAT_ERROR.fullmatch(body.strip()):
                return body
    return ""


def _atom_kind(element: etree._Element) -> str | None:
    """'text', 'html' or 'xhtml' for an Atom text construct; None if it has no inline text."""
    if element.get("src") is not None or (element.get("mode") or "").strip() == "base64":
        return None
    kind = (element.get("type") or "text").strip().lower()
    return _ATOM_KINDS.get(kind, "text" if kind.startswith("text/") else None)


def _tag(element: etree._Element) -> str:
    """The tag of a parsed element: always text ({namespace}name) for the elements read here."""
    return cast(str, element.tag)


def _plain(element: etree._Element | None) -> str:
    """Plain text of a title-like element, whitespace collapsed."""
    if element is None:
        return ""
    if not _tag(element).startswith(_ATOM_PREFIXES):
        return _collapse(_text(element))
    kind = _atom_kind(element)
    if kind == "html":
        return _collapse(html.unescape(_TAG.sub("", _text(element))))
    return _collapse(_text(element)) if kind else ""


def _markup(element: etree._Element) -> str:
    """HTML for a body element: escaped HTML, embedded XHTML or (Atom) escaped plain text."""
    if not _tag(element).startswith(_ATOM_PREFIXES):
        has_markup = any(isinstance(child.tag, str) for child in element)
        return _inner_markup(element) if has_markup else _text(element)
    kind = _atom_kind(element)
    if kind == "xhtml":
        div = element.find(_q(_XHTML, "div"))
        return _inner_markup(div if div is not None else element)
    if kind == "html":
        return _text(element)
    return html.escape(_text(element), quote=False) if kind else ""


def _inner_markup(element: etree._Element) -> str:
    """Serialise an element's children as HTML, with the XHTML namespace stripped."""
    clone = copy.deepcopy(element)
    for node in clone.iter():
        if isinstance(node.tag, str) and node.tag.startswith(f"{{{_XHTML}}}"):
            node.tag = node.tag.rpartition("}")[2]
    etree.cleanup_namespaces(clone)
    parts = [html.escape(clone.text or "", quote=False)]
    parts.extend(
        etree.tostring(child, encoding="unicode", method="html", with_tail=True) for child in clone
    )
    return "".join(parts)


def _text(element: etree._Element) -> str:
    """Text content; unexpanded entity references are decoded as HTML named entities."""
    parts = [element.text or ""]
    for child in element:
        if isinstance(child, etree._Entity):
            parts.append(html.unescape(child.text or ""))
        elif isinstance(child.tag, str):
            parts.append(_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _children(element: etree._Element, tags: tuple[str, ...]) -> Iterator[etree._Element]:
    return (child for child in element if child.tag in tags)


def _first(element: etree._Element, tags: tuple[str, ...]) -> etree._Element | None:
    for tag in tags:
        found = next(_children(element, (tag,)), None)
        if found is not None:
            return found
    return None


def _text_of(element: etree._Element, tags: tuple[str, ...]) -> str:
    found = _first(element, tags)
    return _collapse(_text(found)) if found is not None else ""


def _xml_base(element: etree._Element, inherited: str) -> str:
    declared = (element.get(_XML_BASE) or "").strip()
    if not declared:
        return inherited
    try:
        return urljoin(inherited, declared)
    except ValueError:
        return inherited


def _absolute(url: str, base: str) -> str:
    """Resolve against base; keep only absolute http(s) URLs, else ''."""
    url = url.strip()
    if not url:
        return ""
    try:
        joined = urljoin(base, url) if base else url
        parts = urlsplit(joined)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    return joined


def parse_date(value: str | None) -> datetime | None:
    """RFC 822/2822 or ISO 8601/RFC 3339 date as aware UTC; None when unparseable."""
    text = _collapse(value or "")
    if not text or len(text) > _MAX_DATE_CHARS:
        return None
    parsed = _iso_date(text) or _rfc822_date(text)
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _iso_date(text: str) -> datetime | None:
    if not text[:1].isdigit():
        return None
    normalised = text.upper()
    if normalised.endswith("Z"):
        normalised = normalised[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(normalised)
    except ValueError:
        return None


def _rfc822_date(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
