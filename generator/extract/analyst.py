"""Extraction for an analyst's pasted report: bytes in (text or HTML), JSON lines out.

``socdef extract [FILE|-]`` reads a report, turns HTML into text the same way ingest does
(table cells and code blocks kept apart), extracts the indicators and prints one JSON object
per line: ``type``, ``value``, ``context``, ``confidence`` and ``defanged``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import orjson

from generator.extract.htmltext import html_to_text
from generator.extract.indicators import Indicator, extract

__all__ = ["decode_report", "extract_report", "indicator_lines", "looks_like_html"]

# A comment ends at its first "-->" (atomic group): letting the engine retry each comment
# ending at a later "-->" made a run of comments exponential (22 of them took a second).
_HTML_START = re.compile(
    rb"\s*+(?><!--.*?-->\s*)*+<(?:!doctype\s+html|html|head|body)[\s>]", re.IGNORECASE | re.DOTALL
)
_HTML_TAG = re.compile(
    rb"</?(?:p|div|span|table|thead|tbody|tr|td|th|ul|ol|li|br|a|pre|code|h[1-6]|b|i|em|strong)"
    rb"(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)
_SNIFF = 65536


def looks_like_html(data: bytes) -> bool:
    """An HTML document, or text with several common HTML tags in its first 64 KiB."""
    head = data[:_SNIFF]
    return bool(_HTML_START.match(head)) or len(_HTML_TAG.findall(head, 0, _SNIFF)) >= 3


def decode_report(data: bytes) -> str:
    """The report as text: UTF-8 (BOM allowed), else Windows-1252; HTML converted."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
        return html_to_text(text) if looks_like_html(text.encode("utf-8")) else text
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    return html_to_text(text) if looks_like_html(data) else text


def extract_report(data: bytes) -> list[Indicator]:
    return extract(decode_report(data))


def indicator_lines(indicators: Iterable[Indicator]) -> Iterator[str]:
    for i in indicators:
        yield orjson.dumps(
            {
                "type": i.type,
                "value": i.value,
                "context": i.context,
                "confidence": i.confidence,
                "defanged": i.defanged,
            }
        ).decode()
