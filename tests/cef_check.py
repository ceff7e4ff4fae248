"""The CEF and syslog gate.

No CEF parser on PyPI follows the specification fully, so a line must pass three readers:

* :func:`parse_cef`, a strict reading of the specification written here: seven header fields
  split on unescaped ``|`` with only ``\\\\`` and ``\\|`` escapes; ``key=value`` pairs split on
  unescaped ``=`` with only ``\\\\``, ``\\=``, ``\\n`` and ``\\r`` escapes (anything else fails);
* ``pycef``, which must find the same header and the same values. Its caveats: it returns
  values still escaped (we unescape before comparing) and renames ``csN`` to the text of
  ``csNLabel``;
* ``cefevent``'s extension dictionary in strict mode: every key must be a CEF key, IPv4/IPv6
  fields must hold addresses, strings must fit the field's length.

Syslog lines must parse with ``syslog-rfc5424-parser`` and carry the CEF event as their MSG.
"""

from __future__ import annotations

import re

import pycef
from cefevent import CEFEvent
from cefevent.extensions import extension_dictionary
from syslog_rfc5424_parser import SyslogMessage
from syslog_rfc5424_parser.constants import SyslogFacility

HEADER_NAMES = (
    "version",
    "deviceVendor",
    "deviceProduct",
    "deviceVersion",
    "signatureId",
    "name",
    "severity",
)
KEY = re.compile(r"^[A-Za-z0-9_]+$")
VALUE_ESCAPES = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}
BOM = "\ufeff"


def _header(line: str) -> tuple[list[str], int]:
    assert line.startswith("CEF:"), line[:20]
    fields, current, i = [], [], 4
    while len(fields) < 7:
        char = line[i]
        if char == "\\":
            assert line[i + 1] in "\\|", f"bad header escape at {i}: {line!r}"
            current.append(line[i + 1])
            i += 2
        elif char == "|":
            fields.append("".join(current))
            current, i = [], i + 1
        else:
            assert char not in "\r\n"
            current.append(char)
            i += 1
    return fields, i


def unescape(raw: str) -> str:
    out, i = [], 0
    while i < len(raw):
        if raw[i] == "\\":
            assert raw[i + 1] in VALUE_ESCAPES, f"bad extension escape: {raw!r}"
            out.append(VALUE_ESCAPES[raw[i + 1]])
            i += 2
        else:
            assert raw[i] not in "\r\n"
            out.append(raw[i])
            i += 1
    return "".join(out)


def _separators(ext: str) -> list[int]:
    found, i = [], 0
    while i < len(ext):
        if ext[i] == "\\":
            i += 2
            continue
        if ext[i] == "=":
            found.append(i)
        i += 1
    return found


def parse_cef(line: str) -> tuple[list[str], dict[str, str]]:
    """(the seven header fields after ``CEF:``, unescaped extension) of one line, strictly."""
    header, start = _header(line)
    ext = line[start:]
    keys = [(ext.rfind(" ", 0, eq) + 1, eq) for eq in _separators(ext)]
    pairs: dict[str, str] = {}
    for n, (begin, eq) in enumerate(keys):
        key = ext[begin:eq]
        assert KEY.match(key) and key not in pairs, f"bad or repeated key {key!r}"
        end = keys[n + 1][0] - 1 if n + 1 < len(keys) else len(ext)
        pairs[key] = unescape(ext[eq + 1 : end])
    assert not keys or keys[0][0] == 0, "text before the first key"
    return header, pairs


def _check_pycef(line: str, header: list[str], pairs: dict[str, str]) -> None:
    found = pycef.parse(line)
    assert found is not None, line
    assert [
        found["CEFVersion"],
        found["DeviceVendor"],
        found["DeviceProduct"],
        found["DeviceVersion"],
        found["DeviceEventClassID"],
        found["Name"],
        found["Severity"],
    ] == header
    for key, value in pairs.items():
        if key.endswith("Label"):
            continue
        name = pairs.get(f"{key}Label", key)
        assert unescape(found[name]) == value, (key, found.get(name), value)


def _check_cefevent(header: list[str], pairs: dict[str, str]) -> None:
    event = CEFEvent(strict=True)
    for name, value in zip(HEADER_NAMES[1:], header[1:], strict=True):
        event.set_prefix(name, value)
    for key, value in pairs.items():
        numeric = {"Integer", "Long"} & set(extension_dictionary[key]["data_type"])
        # raises on an unknown key, a bad address, a long string or a number that is not one
        event.set_field(key, int(value) if numeric else value)


def check_cef_line(line: str) -> dict[str, str]:
    """Every check of one CEF line (without its newline); returns the unescaped extension."""
    header, pairs = parse_cef(line)
    assert header[0] == "0" and 0 <= int(header[6]) <= 10
    _check_pycef(line, header, pairs)
    _check_cefevent(header, pairs)
    return pairs


def check_syslog_line(line: str) -> tuple[SyslogMessage, dict[str, str]]:
    """RFC 5424 framing around one CEF event; returns the message and the event's extension."""
    message = SyslogMessage.parse(line)
    assert message.version == 1 and message.facility == SyslogFacility.local0
    assert message.appname == "socdef" and message.msgid == "ioc"
    assert message.msg.startswith(BOM + "CEF:0|"), message.msg[:20]
    return message, check_cef_line(message.msg.removeprefix(BOM))
