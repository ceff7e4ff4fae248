"""Many indicators checked against the compiled warninglists at once (the build's path).

Most indicators are on no list, so each type is first screened in columns (pyarrow and numpy:
no Python object per value) and only the few that may be on a list go through
:class:`generator.extract.warninglists.Warninglists`'s exact walk:

- hashes: the first 16 hex digits of each value as a uint64 (numpy over the column's bytes),
  found by ``numpy.searchsorted`` among the keys' prefixes of that length; only matches go to
  the exact dict (``index_in`` for values that are not fixed-width hex);
- IPv4: parsed in columns, found by ``numpy.searchsorted`` in the sorted range starts;
- domains and the hosts of URLs: a host can only be on a list when its last two labels are
  the last two labels of some entry (or its last label a one-label entry), one ``index_in``
  (the labels cut by one reverse split, not a regular expression);
- URLs: also ``index_in`` against the exact URL entries; e-mail: its domain as a host, plus
  each regex list run over the column (RE2);
- IPv6 and anything else: one at a time (rare).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from generator.extract.warninglists import HASH_TYPES, Hit, Warninglists

_URL_HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?(?P<h>\[[^\]]*\]|[^/?#:]*)"


class BatchChecker:
    """:meth:`check` answers what ``Warninglists.check_many`` would, a column at a time."""

    def __init__(self, lists: Warninglists) -> None:
        self.lists = lists
        self._host_exact = pa.array(list(lists._host), pa.string())
        self._host_two, self._host_one = _suffix_keys(lists._suffix)
        self._email_exact = pa.array(list(lists._email), pa.string())
        self._email_two, self._email_one = _suffix_keys(lists._email_suffix)
        self._hash_keys = pa.array(list(lists._hash), pa.string())
        self._hash_hits = list(lists._hash.values())
        self._hash_prefixes = _prefixes_by_width(lists._hash)
        self._url_keys = pa.array(list(lists._url), pa.string())
        self._v4_starts = np.array(lists._v4.starts, dtype=np.int64)
        self._v4_hits = lists._v4.hits
        self._v4_listed = np.array([h is not None for h in self._v4_hits] + [False], dtype=bool)
        self._regexes = [_re2(p.pattern, p.flags) for p, _ in lists._regexes]

    def check(
        self, types: Sequence[str] | pa.Array, values: Sequence[str] | pa.Array
    ) -> list[Hit | None]:
        """The hit of each (type, value), in order; columns (as the store keeps them) or lists."""
        out: list[Hit | None] = [None] * len(values)
        type_column = types if isinstance(types, pa.Array) else pa.array(types, pa.string())
        value_column = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
        for type_ in pc.unique(type_column).to_pylist():
            places = pc.indices_nonzero(pc.equal(type_column, type_))
            column = pc.take(value_column, places)
            found = self._group(type_, column)
            if found:
                where = places.to_pylist()
                for i, hit in found:
                    out[where[i]] = hit
        return out

    def _group(self, type_: str, column: pa.Array) -> list[tuple[int, Hit | None]]:
        """(place in ``column``, hit) of the values of ``type_`` on some list."""
        if type_ in HASH_TYPES:
            fast = self._hashes(column)
            if fast is not None:
                return fast
            found = pc.index_in(column, value_set=self._hash_keys)
            at = pc.indices_nonzero(pc.is_valid(found)).to_pylist()
            keys = pc.take(found, pa.array(at, pa.int64())).to_pylist()
            return [(i, self._hash_hits[k]) for i, k in zip(at, keys, strict=True)]
        if type_ == "ipv4":
            return self._ipv4(column)
        if type_ == "domain":
            return self._walk(column, self._hosts_maybe(column), self.lists.host)
        if type_ == "url":
            maybe = self._url_maybe(column)
            return self._walk(column, maybe, self.lists.url)
        if type_ == "email":
            return self._walk(column, self._email_maybe(column), self.lists.email)
        check = self.lists.check
        return [(i, check(type_, v)) for i, v in enumerate(column.to_pylist())]

    def _hashes(self, column: pa.Array) -> list[tuple[int, Hit | None]] | None:
        """The hash path in numpy, for a column of lowercase hex of one width (else None)."""
        prefix = _hex_prefix(column)
        if prefix is None:
            return None
        width, numbers = prefix
        keys = self._hash_prefixes.get(width)
        if keys is None or not len(numbers):
            return []
        slot = np.minimum(np.searchsorted(keys, numbers), len(keys) - 1)
        at = np.nonzero(keys[slot] == numbers)[0].tolist()
        if not at:
            return []
        values = pc.take(column, pa.array(at, pa.int64())).to_pylist()
        get = self.lists._hash.get
        found = [(i, get(v)) for i, v in zip(at, values, strict=True)]
        return [(i, hit) for i, hit in found if hit is not None]

    def _walk(
        self, column: pa.Array, maybe: pa.Array, check: object
    ) -> list[tuple[int, Hit | None]]:
        at = pc.indices_nonzero(maybe).to_pylist()
        values = pc.take(column, pa.array(at, pa.int64())).to_pylist()
        found = [(i, check(v)) for i, v in zip(at, values, strict=True)]  # type: ignore[operator]
        return [(i, hit) for i, hit in found if hit is not None]

    def _hosts_maybe(self, hosts: pa.Array) -> pa.Array:
        exact = pc.is_in(hosts, value_set=self._host_exact)
        return pc.or_(exact, _suffix_maybe(hosts, self._host_two, self._host_one))

    def _url_maybe(self, urls: pa.Array) -> pa.Array:
        exact = pc.is_in(pc.utf8_lower(urls), value_set=self._url_keys)
        hosts = pc.utf8_lower(_url_hosts(urls))
        ip_host = pc.match_substring_regex(hosts, r"^(\[|[0-9.]+$)")
        no_host = pc.is_null(hosts)
        maybe = pc.or_(pc.or_(exact, self._hosts_maybe(hosts)), ip_host)
        return pc.fill_null(pc.or_(maybe, no_host), True)

    def _email_maybe(self, emails: pa.Array) -> pa.Array:
        lowered = pc.utf8_lower(emails)
        domains = _extract(lowered, r"@(?P<k>[^@]*)$")
        maybe = _suffix_maybe(domains, self._email_two, self._email_one)
        maybe = pc.or_(maybe, pc.is_in(lowered, value_set=self._email_exact))
        maybe = pc.or_(maybe, pc.is_null(domains))
        for pattern in self._regexes:
            if pattern is None:
                return pa.array([True] * len(emails))
            maybe = pc.or_(maybe, pc.match_substring_regex(lowered, pattern))
        return pc.fill_null(maybe, True)

    def _ipv4(self, column: pa.Array) -> list[tuple[int, Hit | None]]:
        parts = pc.split_pattern(column, ".")
        good = pc.equal(pc.list_value_length(parts), 4)
        if not pc.all(good).as_py():  # not all dotted quads: one at a time
            ip = self.lists.ip
            return [(i, h) for i, v in enumerate(column.to_pylist()) if (h := ip(v))]
        octets = pc.cast(pc.list_flatten(parts), pa.int64()).to_numpy().reshape(-1, 4)
        number = (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
        slot = np.searchsorted(self._v4_starts, number, side="right") - 1
        hits, listed = self._v4_hits, self._v4_listed
        at = np.nonzero(listed[slot])[0]  # slot -1 reads the trailing False
        return [(i, hits[k]) for i, k in zip(at.tolist(), slot[at].tolist(), strict=True)]


_LOWER_HEX = re.compile(r"[0-9a-f]+")
_HEX = np.full(256, 255, dtype=np.uint8)
_HEX[np.frombuffer(b"0123456789", dtype=np.uint8)] = np.arange(10, dtype=np.uint8)
_HEX[np.frombuffer(b"abcdef", dtype=np.uint8)] = np.arange(10, 16, dtype=np.uint8)
_SHIFTS = np.arange(60, -1, -4, dtype=np.uint64)  # the 16 nibbles of a uint64, first highest


def _hex_prefix(column: pa.Array) -> tuple[int, np.ndarray] | None:
    """(the width, the first 16 hex digits of each value as uint64) when every value is
    lowercase hex of one width of at least 16; else None."""
    if column.null_count or not len(column) or column.type != pa.string():
        return None
    _, offsets_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[column.offset :][: len(column) + 1]
    width = int(offsets[1] - offsets[0])
    if width < 16 or int(offsets[-1] - offsets[0]) != width * len(column):
        return None
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]
    nibbles = _HEX[data.reshape(len(column), width)]
    if (nibbles == 255).any():
        return None
    return width, (nibbles[:, :16].astype(np.uint64) << _SHIFTS).sum(axis=1, dtype=np.uint64)


def _prefixes_by_width(keys: dict[str, Hit]) -> dict[int, np.ndarray]:
    """The sorted uint64 prefixes (first 16 hex digits) of the hex keys, by key width."""
    by_width: dict[int, list[str]] = {}
    for key in filter(_LOWER_HEX.fullmatch, keys):
        by_width.setdefault(len(key), []).append(key)
    out = {}
    for width, names in by_width.items():
        prefix = _hex_prefix(pa.array(names, pa.string()))
        if prefix is not None:
            out[width] = np.unique(prefix[1])
    return out


def _extract(column: pa.Array, pattern: str, name: str = "k") -> pa.Array:
    """The group ``name`` of ``pattern`` in each value (null where it does not match)."""
    matched = pc.match_substring_regex(column, pattern)
    safe = pc.if_else(matched, column, pa.scalar("", pa.string()))
    field = pc.struct_field(pc.extract_regex(safe, pattern), [name])
    return pc.if_else(matched, field, pa.scalar(None, pa.string()))


def _suffix_keys(suffixes: dict[str, Hit]) -> tuple[pa.Array, pa.Array]:
    """(the last two labels of every suffix entry, the one-label suffix entries)."""
    two = {".".join(name.split(".")[-2:]) for name in suffixes if "." in name}
    one = {name for name in suffixes if "." not in name}
    return pa.array(sorted(two), pa.string()), pa.array(sorted(one), pa.string())


def _suffix_maybe(hosts: pa.Array, two: pa.Array, one: pa.Array) -> pa.Array:
    """Hosts that may be under a suffix entry: their last two labels are those of an entry,
    or their last label is a one-label entry."""
    last_two, last = _last_labels(hosts)
    by_two = pc.is_in(last_two, value_set=two)
    by_one = pc.is_in(last, value_set=one)
    return pc.fill_null(pc.or_(by_two, by_one), False)


def _url_hosts(urls: pa.Array) -> pa.Array:
    """The host of each URL, as ``_URL_HOST`` finds it: the authority cut by two splits, and
    the regular expression only for the few URLs whose scheme or authority is unusual (user
    info, a port, a bracketed address)."""
    parts = pc.split_pattern(urls, "://", max_splits=1)
    two = pc.fill_null(pc.equal(pc.list_value_length(parts), 2), False)
    scheme = pc.list_element(parts, 0)
    rest = pc.list_element(pc.if_else(two, parts, pa.scalar(None, parts.type)), 1)
    authority = pc.list_element(pc.split_pattern_regex(rest, r"[/?#]", max_splits=1), 0)
    odd = pc.or_(
        pc.or_(pc.match_substring(authority, "@"), pc.match_substring(authority, ":")),
        pc.or_(
            pc.match_substring(authority, "["),
            pc.invert(pc.match_substring_regex(scheme, r"^[A-Za-z][A-Za-z0-9+.-]*$")),
        ),
    )
    odd = pc.fill_null(pc.and_(two, odd), False)
    if not pc.any(odd).as_py():
        return authority
    at = pc.indices_nonzero(odd)
    exact = _extract(pc.take(urls, at), _URL_HOST, "h").to_pylist()
    hosts = authority.to_pylist()
    for i, host in zip(at.to_pylist(), exact, strict=True):
        hosts[i] = host
    return pa.array(hosts, pa.string())


def _last_labels(hosts: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(the last two labels, the last label) of each host (null for a null host; the first is
    null for a one-label host): one reverse split, no regular expression."""
    parts = pc.split_pattern(hosts, ".", max_splits=2, reverse=True)
    lengths = pc.fill_null(pc.list_value_length(parts), 0)
    ends = np.cumsum(lengths.to_numpy(zero_copy_only=False), dtype=np.int64)
    flat = pc.list_flatten(parts)
    if not len(flat):
        empty = pa.nulls(len(hosts), pa.string())
        return empty, empty
    last = pc.take(flat, pa.array(np.maximum(ends - 1, 0)))
    before = pc.take(flat, pa.array(np.maximum(ends - 2, 0)))
    nothing = pa.scalar(None, pa.string())
    two = pc.if_else(
        pc.greater_equal(lengths, 2), pc.binary_join_element_wise(before, last, "."), nothing
    )
    return two, pc.if_else(pc.greater_equal(lengths, 1), last, nothing)


def _re2(pattern: str, flags: int) -> str | None:
    """A Python pattern as RE2 syntax for pyarrow (None: RE2 cannot run it)."""
    text = ("(?i)" if flags & re.IGNORECASE else "") + pattern.replace("\\@", "@")
    try:
        pc.match_substring_regex(pa.array([""]), text)
    except pa.ArrowInvalid:
        return None
    return text
