"""OpenIOC 1.1 fragments, one per record (the document head and tail are in ``worker/endpoints/openioc.py``).

Two variants, cut from the same record so the edge can splice them: ``openioc`` is the
record's ``<IndicatorItem>`` (for the document's one ``OR`` indicator) and ``openiocp`` its
``<param>`` entries (confidence, source, context), which refer to the item by ``ref-id``.
Search terms come from the official 1.1 term list; it has none for SHA-512, CVEs or ATT&CK
techniques, so those records render as empty fragments and are absent from OpenIOC answers.
Text is XML-escaped and characters XML 1.0 forbids are dropped.
"""

from __future__ import annotations

import re

from exports.model import IOCRecord

# our type → (Context document, Context search, Content type), from current.iocterms
TERMS: dict[str, tuple[str, str, str]] = {
    "ipv4": ("PortItem", "PortItem/remoteIP", "IP"),
    "ipv6": ("PortItem", "PortItem/remoteIP", "IP"),
    "domain": ("DnsEntryItem", "DnsEntryItem/RecordName", "string"),
    "url": ("UrlHistoryItem", "UrlHistoryItem/URL", "string"),
    "md5": ("FileItem", "FileItem/Md5sum", "md5"),
    "sha1": ("FileItem", "FileItem/Sha1sum", "sha1"),
    "sha256": ("FileItem", "FileItem/Sha256sum", "sha256"),
    "email": ("Email", "Email/From", "string"),
}
_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    """Characters XML 1.0 forbids dropped; all of them are non-printable, hence the fast path."""
    return text if text.isprintable() else _FORBIDDEN.sub("", text)


def xml_text(text: str) -> str:
    """Character data: ``&``, ``<``, ``>`` (so ``]]>`` is harmless) and CR escaped."""
    return (
        _clean(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\r", "&#13;")
    )


def param_id(r: IOCRecord, name: str) -> str:
    return f"{r.id}-{name}"


def render_item(r: IOCRecord) -> bytes:
    term = TERMS.get(r.type)
    if term is None:
        return b""
    document, search, content_type = term
    return (
        f'<IndicatorItem id="{r.id}" condition="is" preserve-case="false" negate="false">'
        f'<Context document="{document}" search="{search}" type="mir"/>'
        f'<Content type="{content_type}">{xml_text(r.value)}</Content></IndicatorItem>\n'
    ).encode()


def _param(r: IOCRecord, name: str, value: str) -> str:
    return (
        f'<param id="{param_id(r, name)}" ref-id="{r.id}" name="{name}">'
        f'<value type="string">{xml_text(value)}</value></param>'
    )


def render_params(r: IOCRecord) -> bytes:
    if r.type not in TERMS:
        return b""
    source = f"{r.feed_name}: {r.article_title} <{r.article_url}>"
    params = [_param(r, "confidence", r.confidence), _param(r, "source", source)]
    if r.context:
        params.append(_param(r, "comment", r.context))
    return ("".join(params) + "\n").encode()
