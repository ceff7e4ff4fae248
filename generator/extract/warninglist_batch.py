"""Many indicators checked against the compiled warninglists at once (the build's path).

Most indicators are on no list, so each type is first screened in columns (pyarrow and numpy:
no Python object per value) and only the few that may be on a list go through
:class:`generator.extract.warninglists.Warninglists`'s exact walk:

- hashes: one ``index_in`` against the hash keys;
- IPv4: parsed in columns, found by ``numpy.searchsorted`` in the sorted range starts;
- domains and the hosts of URLs: a host can only be on a list when its last two labels are
  the last two labels of some entry (or its last label a one-label entry), one ``index_in``;
- URLs: also ``index_in`` against the exact URL entries; e-mail: its domain as a host, plus
  each regex list run over the column (RE2);
- IPv6 and anything else: one at a time (rare).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from generator.extract.warninglists import HASH_TYPES, Hit, Warninglists

_URL_HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?(?P<h>\[[^\]]*\]|[^/?#:]*)"
_LAST_TWO = r"(?P<k>[^.]+\.[^.]+)$"
_LAST_ONE = r"(?P<k>[^.]+)$"


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
        self._url_keys = pa.array(list(lists._url), pa.string())
        self._v4_starts = np.array(lists._v4.starts, dtype=np.int64)
        self._v4_hits = lists._v4.hits
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
        hosts = pc.utf8_lower(_extract(urls, _URL_HOST, "h"))
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
        number = np.zeros(len(column), dtype=np.int64)
        for k in range(4):
            octet = pc.cast(pc.list_element(parts, k), pa.int64()).to_numpy()
            number = (number << 8) | octet
        slot = np.searchsorted(self._v4_starts, number, side="right") - 1
        hits = self._v4_hits
        listed = np.array([h is not None for h in hits] + [False], dtype=bool)
        at = np.nonzero(listed[slot])[0]  # slot -1 reads the trailing False
        return [(i, hits[k]) for i, k in zip(at.tolist(), slot[at].tolist(), strict=True)]


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
    by_two = pc.is_in(_extract(hosts, _LAST_TWO), value_set=two)
    by_one = pc.is_in(_extract(hosts, _LAST_ONE), value_set=one)
    return pc.fill_null(pc.or_(by_two, by_one), False)


def _re2(pattern: str, flags: int) -> str | None:
    """A Python pattern as RE2 syntax for pyarrow (None: RE2 cannot run it)."""
    import re

    text = ("(?i)" if flags & re.IGNORECASE else "") + pattern.replace("\\@", "@")
    try:
        pc.match_substring_regex(pa.array([""]), text)
    except pa.ArrowInvalid:
        return None
    return text
