"""Turn an article's HTML into plain text lines suited to indicator extraction.

Block elements end lines, cells of one table row are joined with `` | `` so they
never merge, ``<pre>``/``<code>`` blocks keep their line breaks, scripts and
styles are dropped and entities are decoded. Parsing never touches the network
and never raises: garbage input yields best-effort text.
"""

from __future__ import annotations

import html as htmllib
import re

from lxml import etree
from lxml import html as lxml_html

__all__ = ["html_to_text"]

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


def _walk(root: etree._Element) -> str:
    out = _Writer()
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, el in walker:
        tag = el.tag.lower() if isinstance(el.tag, str) else ""
        if event == "start":
            if tag in _DROP:
                walker.skip_subtree()
                continue
            out.start(tag)
            out.text(el.text)
        else:
            if tag not in _DROP:
                out.end(tag)
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
