"""Many indicators checked against the compiled warninglists at once (the build's path).

:meth:`BatchChecker.check` answers exactly what ``Warninglists.check_many`` answers, but works
on the Arrow columns' bytes with numpy: no Python object per value, and no Python work per hit
either. Every distinct :class:`Hit` gets a small integer code (0: no hit); each type of value
is turned into a column of codes, codes are combined by merging each distinct pair once, and
the answer list is made from the codes at the end.

- Strings are looked up in open-addressing hash tables built once from the lists: a value's
  key is its length and its first and last 8 bytes (read as two unaligned 64-bit words), and a
  found key is verified byte for byte, so the answer is exact.
- Host names (domains, the hosts of URLs, the domains of e-mail addresses) are looked up
  label-suffix by label-suffix in one table of every suffix of every list entry: the last two
  labels first (most names end there), then, for the names that go on, every suffix, with the
  private public suffixes (``github.io``) turning the shorter suffixes' hits into annotations
  as ``Warninglists.host`` does.
- IPv4 and IPv6 addresses are parsed in columns (dotted quads from their dot positions and
  digits; IPv6 from its groups, ``::`` expanded) and found by ``numpy.searchsorted`` in the
  sorted range starts.
- URLs: the host is cut from the lowercased URL at the same places ``_url_host`` cuts it.
- E-mail: the domain after the last ``@``, plus each regex list over the column (RE2).

Values the column code does not take (anything with non-ASCII text where case matters,
malformed names, embedded IPv4 in IPv6, URL hosts that look like addresses, ...) are checked
one by one by ``Warninglists.check``: the answer is the same either way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from generator.extract.warninglists import HASH_TYPES, Hit, Warninglists

_TYPES = ("ipv4", "ipv6", "domain", "url", "email", "md5", "sha1", "sha256", "sha512")
_MASKS = np.array([(1 << (8 * m)) - 1 for m in range(9)], dtype=np.uint64)
_I64 = np.int64
_U64 = np.uint64
_U32 = np.uint32
_HTTPS = np.uint64(int.from_bytes(b"https://", "little"))
_HTTP = np.uint64(int.from_bytes(b"http://", "little"))
_HTTP_MASK = (1 << 56) - 1
_DOT, _AT, _COLON, _SLASH, _QUERY, _HASH, _OPEN, _CLOSE = (ord(c) for c in ".@:/?#[]")


class _Raw:
    """A byte buffer (uint8), with the unaligned little-endian 64-bit word at every byte."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.size = len(data)
        self.words = np.ndarray((self.size - 7,), dtype="<u8", buffer=data, strides=(1,))

    def word(self, at: np.ndarray) -> np.ndarray:
        """The 8 bytes from each position ``at`` (bytes past the end read as 0)."""
        last = self.size - 8
        if not len(at) or at.max() <= last:
            return self.words[at]
        out = self.words[np.minimum(at, last)]
        late = np.flatnonzero(at > last)
        out[late] >>= ((at[late] - last) * 8).astype(_U64)
        return out

    def print(self, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, ...]:
        """(length, first 8 bytes, last 8 bytes) of each range, short ones zero-padded."""
        length = ends - starts
        first = self.word(starts)
        if len(ends) and ends.min() >= 8:
            last = self.words[ends - 8]
        else:
            last = self.words[np.maximum(ends - 8, 0)]
        short = np.flatnonzero(length < 8)
        if len(short):
            m, end = length[short], ends[short]
            keep = _MASKS[m]
            first[short] &= keep
            read = np.maximum(end - 8, 0)
            last[short] = (self.words[read] >> ((end - m - read) * 8).astype(_U64)) & keep
        return length, first, last


class _Bytes(_Raw):
    """One string column's bytes: ``data`` (uint8), ``words`` (the unaligned little-endian
    64-bit word at every byte) and each row's ``starts``/``ends``."""

    def __init__(self, column: pa.Array) -> None:
        if column.type != pa.string():
            column = column.cast(pa.string())
        _, offsets, data = column.buffers()
        offs = np.frombuffer(offsets, dtype=np.int32)[
            column.offset : column.offset + len(column) + 1
        ]
        raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        if len(raw) < 8:
            raw = np.concatenate([raw, np.zeros(8 - len(raw), np.uint8)])
        super().__init__(raw)
        self.starts = offs[:-1].astype(_I64)
        self.ends = offs[1:].astype(_I64)
        self.found: dict[tuple[int, ...], np.ndarray] = {}

    def positions(self, *chars: int) -> np.ndarray:
        """Every position of any of ``chars`` in the data."""
        found = self.found.get(chars)
        if found is None:
            hit = self.data == chars[0]
            for c in chars[1:]:
                hit |= self.data == c
            found = self.found[chars] = np.flatnonzero(hit)
        return found


def _tag(h: np.ndarray) -> np.ndarray:
    """A non-zero 32-bit tag of each hash."""
    return ((h >> _U64(32)) | _U64(1)).astype(np.uint32)


def _mix(length: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    h = first * _U64(0x9E3779B97F4A7C15) ^ (last * _U64(0xC2B2AE3D27D4EB4F))
    h ^= length.astype(_U64) * _U64(0x165667B19E3779F9)
    h ^= h >> _U64(29)
    h *= _U64(0xBF58476D1CE4E5B9)
    return h ^ (h >> _U64(32))


class _Table:
    """Exact set of byte strings → their index, an open-addressing hash table in numpy.

    Keys with the same print (length, first and last 8 bytes: long names differing only in
    the middle) form one group, one slot: a lookup stops at its print's slot and compares
    the middles with the group's keys only then."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        self.count = len(keys)
        blob = b"".join(keys)
        data = np.frombuffer(blob + b"\0" * 8, dtype=np.uint8)
        lengths = np.array([len(k) for k in keys], dtype=_I64)
        self.starts = np.zeros(len(keys), _I64)
        if len(keys):
            self.starts[1:] = np.cumsum(lengths)[:-1]
        self.data = data
        keyed = _Raw(data)
        self.length, self.first, self.last = keyed.print(self.starts, self.starts + lengths)
        hashes = _mix(self.length, self.first, self.last)
        # the keys ordered by print, a group per print: its members, first and size
        order = np.lexsort((self.last, self.first, self.length))
        length, first, last = self.length[order], self.first[order], self.last[order]
        same = (length[1:] == length[:-1]) & (first[1:] == first[:-1]) & (last[1:] == last[:-1])
        begins = np.flatnonzero(np.r_[True, ~same]) if len(keys) else np.zeros(0, _I64)
        self.members = order.astype(_I64)
        self.group_first = begins.astype(_I64)
        self.group_size = np.diff(np.r_[begins, len(keys)]).astype(_I64)
        self.single = bool((self.group_size == 1).all())
        head = self.members[begins]  # each group's first key: its print
        self.hash = hashes[head]
        self.group_length = self.length[head]
        self.group_head_first = self.first[head]
        self.group_head_last = self.last[head]
        groups = len(begins)
        bits = max(4, int(2 * max(1, groups) - 1).bit_length())
        self.mask = (1 << bits) - 1
        slots = np.full(1 << bits, -1, dtype=np.int32)
        pending = np.arange(groups, dtype=_I64)
        where = (self.hash & _U64(self.mask)).astype(_I64)
        self.probes = 0
        while len(pending):
            self.probes += 1
            free = slots[where] < 0
            go, at = pending[free], where[free]
            at_unique, taken = np.unique(at, return_index=True)
            slots[at_unique] = go[taken]
            placed = np.zeros(len(pending), bool)
            placed[np.flatnonzero(free)[taken]] = True
            pending, where = pending[~placed], (where[~placed] + 1) & self.mask
        self.slots = slots
        # a 32-bit tag of each slot's hash (0: empty), checked before the print itself
        self.tags = np.where(slots >= 0, _tag(self.hash)[np.maximum(slots, 0)], 0).astype(np.uint32)

    def find(self, source: _Raw, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """The index of each range's string among the keys, or -1."""
        if not self.count or not len(starts):
            return np.full(len(starts), -1, dtype=_I64)
        return self.find_printed(source, starts, ends, *source.print(starts, ends))

    def find_printed(
        self,
        source: _Raw,
        starts: np.ndarray,
        ends: np.ndarray,
        length: np.ndarray,
        first: np.ndarray,
        last: np.ndarray,
    ) -> np.ndarray:
        """:meth:`find` of ranges whose :meth:`_Raw.print` is already known."""
        out = np.full(len(starts), -1, dtype=_I64)
        if not self.count or not len(starts):
            return out
        h = _mix(length, first, last)
        tag = _tag(h)
        where = (h & _U64(self.mask)).astype(_I64)
        rows = np.arange(len(starts))
        hit_rows, hit_groups = [], []
        for _ in range(self.probes + 1):
            seen = self.tags[where]
            same = np.flatnonzero(seen == tag)
            if len(same):
                at, g = rows[same], self.slots[where[same]].astype(_I64)
                ok = (self.group_length[g] == length[at]) & (self.group_head_first[g] == first[at])
                ok &= self.group_head_last[g] == last[at]
                hit_rows.append(at[ok])
                hit_groups.append(g[ok])
                seen[same[ok]] = 0  # the print's slot: stop
            go = seen != 0
            if not go.any():
                break
            rows, where, tag = rows[go], (where[go] + 1) & self.mask, tag[go]
        if hit_rows:
            at, g = np.concatenate(hit_rows), np.concatenate(hit_groups)
            out[at] = self._member(source, starts[at], length[at], g)
        return out

    def _member(
        self, source: _Raw, starts: np.ndarray, length: np.ndarray, groups: np.ndarray
    ) -> np.ndarray:
        """The key equal to each range among its print's group (-1: none)."""
        if self.single:
            keys = self.members[self.group_first[groups]]
            long = np.flatnonzero(length > 16)
            if len(long):
                equal = self._middle_equal(
                    source, starts[long], self.starts[keys[long]], length[long]
                )
                keys[long[~equal]] = -1
            return keys
        size = self.group_size[groups]
        row = np.repeat(np.arange(len(groups)), size)
        step = np.arange(len(row)) - np.repeat(np.cumsum(size) - size, size)
        keys = self.members[self.group_first[groups][row] + step]
        equal = np.ones(len(row), bool)
        long = np.flatnonzero(length[row] > 16)
        if len(long):
            equal[long] = self._middle_equal(
                source, starts[row[long]], self.starts[keys[long]], length[row[long]]
            )
        out = np.full(len(groups), -1, dtype=_I64)
        out[row[equal]] = keys[equal]  # keys differ: at most one of a group is equal
        return out

    def _middle_equal(
        self, source: _Raw, starts: np.ndarray, keys: np.ndarray, lengths: np.ndarray
    ) -> np.ndarray:
        """Whether bytes 8 … length-8 of each range equal those of its key."""
        spans = lengths - 16
        total = int(spans.sum())
        if total <= 0:
            return np.ones(len(starts), bool)
        owner = np.repeat(np.arange(len(starts)), spans)
        step = np.arange(total) - np.repeat(np.cumsum(spans) - spans, spans)
        differ = source.data[starts[owner] + 8 + step] != self.data[keys[owner] + 8 + step]
        return np.bincount(owner[differ], minlength=len(starts)) == 0


class _Codes:
    """The numbering of hits (0: none) and merges of code columns."""

    def __init__(self, lists: Warninglists) -> None:
        self.lists = lists
        self.hits: list[Hit | None] = [None]
        self.numbers: dict[Hit, int] = {}
        self.pairs: dict[tuple[int, int], int] = {}
        self.maps: dict[str, dict[int, int]] = {}

    def code(self, hit: Hit | None) -> int:
        if hit is None:
            return 0
        number = self.numbers.get(hit)
        if number is None:
            number = self.numbers[hit] = len(self.hits)
            self.hits.append(hit)
        return number

    def merge(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``Warninglists``'s merge of each pair of codes."""
        out = np.where(a == 0, b, a)
        both = np.flatnonzero((a != 0) & (b != 0) & (a != b))
        if len(both):
            pair = (a[both].astype(_I64) << 32) | b[both].astype(_I64)
            unique, inverse = np.unique(pair, return_inverse=True)
            merged = np.array([self._pair(int(p) >> 32, int(p) & 0xFFFFFFFF) for p in unique])
            out[both] = merged[inverse]
        return out

    def _pair(self, a: int, b: int) -> int:
        made = self.pairs.get((a, b))
        if made is None:
            made = self.pairs[(a, b)] = self.code(
                self.lists._intern.merge(self.hits[a], self.hits[b])
            )
        return made

    def apply(
        self, name: str, codes: np.ndarray, change: Callable[[Hit], Hit | None]
    ) -> np.ndarray:
        """``change`` of the hit of each code (0 stays 0), each distinct code once."""
        done = self.maps.setdefault(name, {})
        at = np.flatnonzero(codes)
        if not len(at):
            return codes
        unique, inverse = np.unique(codes[at], return_inverse=True)
        for c in unique.tolist():
            if c not in done:
                done[c] = self.code(change(self.hits[c]))
        out = codes.copy()
        out[at] = np.array([done[c] for c in unique.tolist()], dtype=_I64)[inverse.ravel()]
        return out

    def reduce(self, rows: np.ndarray, codes: np.ndarray, count: int) -> np.ndarray:
        """The merge of the codes of each row (``rows`` ascending), for ``count`` rows."""
        out = np.zeros(count, dtype=_I64)
        keep = codes != 0
        rows, codes = rows[keep], codes[keep]
        if not len(rows):
            return out
        begins = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        rank = np.arange(len(rows)) - np.repeat(begins, np.diff(np.r_[begins, len(rows)]))
        out[rows[rank == 0]] = codes[rank == 0]
        for r in range(1, int(rank.max()) + 1):
            at = rank == r
            out[rows[at]] = self.merge(out[rows[at]], codes[at])
        return out


class BatchChecker:
    """:meth:`check` answers what ``Warninglists.check_many`` would, a column at a time."""

    def __init__(self, lists: Warninglists) -> None:
        self.lists = lists
        self.codes = codes = _Codes(lists)
        # every suffix (at a dot) of every host, suffix, e-mail suffix and private entry
        names: dict[str, None] = {}
        for table in (lists._host, lists._suffix, lists._email_suffix, lists._private):
            for name in table:
                labels = name.split(".")
                for i in range(len(labels)):
                    names[".".join(labels[i:])] = None
        nodes = list(names)
        self._nodes = _Table([n.encode("utf-8", "surrogateescape") for n in nodes])
        get = lambda table, n: codes.code(table.get(n))  # noqa: E731
        self._full = np.array(
            [
                codes.code(lists._intern.merge(lists._host.get(n), lists._suffix.get(n)))
                for n in nodes
            ],
            dtype=_I64,
        )
        self._suffix = np.array([get(lists._suffix, n) for n in nodes], dtype=_I64)
        self._annotating = np.array(
            [
                codes.code(lists._annotating(lists._suffix[n])) if n in lists._suffix else 0
                for n in nodes
            ],
            dtype=_I64,
        )
        self._private = np.array([n in lists._private for n in nodes], dtype=bool)
        self._email_suffix = np.array([get(lists._email_suffix, n) for n in nodes], dtype=_I64)
        # the one-label names with a hit of their own: the last label of most names is
        # looked up in this small table only
        tld = [i for i, n in enumerate(nodes) if "." not in n]
        tld = [i for i in tld if self._suffix[i] or self._email_suffix[i] or self._private[i]]
        self._tld = _Table([nodes[i].encode("utf-8", "surrogateescape") for i in tld])
        self._tld_node = np.array(tld, dtype=_I64)
        # the same labels as words (up to 8 bytes, no NUL: the word and length name one
        # label), sorted: a last label is found by one search in them
        short = [
            (int.from_bytes(k, "little"), len(k), i)
            for i, k in ((i, nodes[i].encode("utf-8", "surrogateescape")) for i in tld)
            if len(k) <= 8 and 0 not in k
        ]
        short.sort()
        if len({w for w, _, _ in short}) != len(short):
            short = []  # never for labels without NUL; the table alone answers then
        self._tld_words = np.array([w for w, _, _ in short], dtype=_U64)
        self._tld_lengths = np.array([n for _, n, _ in short], dtype=_I64)
        self._tld_nodes = np.array([i for _, _, i in short], dtype=_I64)
        self._tld_fast = (
            0
            < len(short)
            == sum(len(nodes[i].encode("utf-8", "surrogateescape")) <= 8 for i in tld)
        )
        hashes = list(lists._hash)
        self._hashes = _Table([h.encode("utf-8", "surrogateescape") for h in hashes])
        self._hash_codes = np.array([codes.code(lists._hash[h]) for h in hashes], dtype=_I64)
        self._urls = pa.array(list(lists._url), pa.string())
        self._url_codes = np.array([codes.code(h) for h in lists._url.values()], dtype=_I64)
        self._emails = pa.array(list(lists._email), pa.string())
        self._email_codes = np.array([codes.code(h) for h in lists._email.values()], dtype=_I64)
        starts4 = [s for s in lists._v4.starts if s < 1 << 32]
        self._v4_starts = np.array(starts4, dtype=_I64)
        self._v4_codes = np.array([codes.code(h) for h in lists._v4.hits[: len(starts4)]], _I64)
        # each /16's code when one range covers all of it, else -1 (searched)
        block = np.arange(1 << 16, dtype=_I64) << 16
        low = np.searchsorted(self._v4_starts, block, side="right") - 1
        high = np.searchsorted(self._v4_starts, block + 0xFFFF, side="right") - 1
        self._v4_blocks = np.where(
            low == high, np.where(low >= 0, self._v4_codes[np.maximum(low, 0)], 0), -1
        )
        starts6 = [s for s in lists._v6.starts if s < 1 << 128]
        self._v6_hi = np.array([s >> 64 for s in starts6], dtype=_U64)
        self._v6_lo = np.array([s & ((1 << 64) - 1) for s in starts6], dtype=_U64)
        self._v6_slot = np.array([codes.code(h) for h in lists._v6.hits[: len(starts6)]], _I64)
        self._regexes = [(_re2(p.pattern, p.flags), p, codes.code(h)) for p, h in lists._regexes]

    # -- the whole column ------------------------------------------------------------------

    def check(
        self, types: Sequence[str] | pa.Array, values: Sequence[str] | pa.Array
    ) -> list[Hit | None]:
        """The hit of each (type, value), in order; columns (as the store keeps them) or lists."""
        return self._answers(self.codes_of(types, values))

    def codes_of(
        self, types: Sequence[str] | pa.Array | pa.ChunkedArray, values: Sequence[str] | pa.Array
    ) -> np.ndarray:
        """The hit code of each (type, value) (``self.codes.hits[code]`` is its hit)."""
        type_column = _array(types)
        value_column = _array(values)
        n = len(value_column)
        out = np.zeros(n, dtype=_I64)
        if not n:
            return out
        if isinstance(type_column.type, pa.DictionaryType):
            lookup = pc.index_in(type_column.dictionary, value_set=pa.array(_TYPES))
            kinds = np.asarray(pc.fill_null(lookup, -1).to_numpy(zero_copy_only=False))
            kind = kinds[type_column.indices.to_numpy(zero_copy_only=False)]
        else:
            found = pc.index_in(type_column, value_set=pa.array(_TYPES))
            kind = np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False))
        kind = kind.astype(np.int8)
        if value_column.null_count:
            kind[~value_column.is_valid().to_numpy(zero_copy_only=False)] = -1
        order = np.argsort(kind, kind="stable")
        bounds = np.searchsorted(kind[order], np.arange(-1, len(_TYPES) + 1))
        whole = _Whole(value_column)
        for number, type_ in enumerate(_TYPES):
            rows = order[bounds[number + 1] : bounds[number + 2]]
            if not len(rows):
                continue
            if type_ in HASH_TYPES:  # two words a value: read in place
                out[rows] = self._group(type_, whole, rows)
            else:  # scanned for punctuation: the type's values side by side first
                part = _Whole(pc.take(value_column, pa.array(rows)))
                out[rows] = self._group(type_, part, np.arange(len(rows)))
        return out

    def _answers(self, codes: np.ndarray) -> list[Hit | None]:
        table = np.empty(len(self.codes.hits), dtype=object)
        table[:] = self.codes.hits
        out: list[Hit | None] = [None] * len(codes)
        at = np.flatnonzero(codes)
        for i, hit in zip(at.tolist(), table[codes[at]].tolist(), strict=True):
            out[i] = hit
        return out

    def _group(self, type_: str, whole: _Whole, rows: np.ndarray) -> np.ndarray:
        raw = whole.raw
        starts, ends = raw.starts[rows], raw.ends[rows]
        if type_ in HASH_TYPES:
            found = self._hashes.find(raw, starts, ends)
            return np.where(found >= 0, self._hash_codes[np.maximum(found, 0)], 0)
        if type_ == "ipv4":
            codes, odd = self._ipv4(raw, starts, ends)
        elif type_ == "ipv6":
            codes, odd = _ipv6(self, raw, starts, ends)
        elif type_ == "domain":
            codes, odd = self._hosts(raw, starts, ends)
        elif type_ == "url":
            codes, odd = self._url(whole, rows)
        else:
            codes, odd = self._email(whole, rows)
        at = np.flatnonzero(odd)
        if len(at):  # one by one
            check, code = self.lists.check, self.codes.code
            values = pc.take(whole.column, pa.array(rows[at])).to_pylist()
            codes[at] = [code(check(type_, v)) for v in values]
        return codes

    # -- host names ------------------------------------------------------------------------

    def _hosts(
        self, source: _Bytes, starts: np.ndarray, ends: np.ndarray, email: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """(code, odd) of each host name ``source[starts:ends]``: as ``Warninglists.host``, or
        with ``email`` as the domain walk of ``Warninglists.email``."""
        n = len(starts)
        codes = np.zeros(n, dtype=_I64)
        dots = source.positions(_DOT)
        first = np.searchsorted(dots, starts)
        if len(starts) > 1 and np.array_equal(starts[1:], ends[:-1]):  # side by side
            stop = np.empty_like(first)
            stop[:-1] = first[1:]
            stop[-1:] = np.searchsorted(dots, ends[-1:])
        else:
            stop = np.searchsorted(dots, ends)
        dots = np.r_[dots, source.size]
        count = stop - first
        odd = ends <= starts
        if len(dots):  # a name starting or ending with a dot, or with two dots in a row
            top = source.size - 1
            odd |= source.data[np.minimum(starts, top)] == _DOT
            odd |= source.data[np.maximum(ends - 1, 0)] == _DOT
            double = dots[1:] == dots[:-1] + 1
            if double.any():
                total = np.r_[0, np.cumsum(double, dtype=_I64), 0]
                some = np.flatnonzero(count > 0)
                odd[some] |= total[stop[some] - 1] - total[first[some]] > 0
        good = ~odd
        # the last two labels (or the whole name when it has one or two)
        two = np.where(count >= 2, dots[np.maximum(stop - 2, 0)] + 1, starts)
        two = np.where(good, two, ends)
        length, _, last = printed = source.print(two, ends)
        node = self._nodes.find_printed(source, two, ends, *printed)
        one_label = good & (count == 0)
        single = np.flatnonzero(one_label & (node >= 0))
        table = self._email_suffix if email else self._full
        codes[single] = table[node[single]]
        # names that stop at the last two labels: only the last label's own suffix hit
        tail = np.flatnonzero(good & (count >= 1) & (node < 0))
        if len(tail) and self._tld.count:
            hit, k = self._last_label(
                source, dots, stop[tail], ends[tail], length[tail], last[tail]
            )
            if email:
                codes[tail[hit]] = self._email_suffix[k]
            else:  # a private last label makes its own hit an annotation
                codes[tail[hit]] = np.where(self._private[k], self._annotating[k], self._suffix[k])
        walk = np.flatnonzero(good & (count >= 1) & (node >= 0))
        if len(walk):
            codes[walk] = self._walk(
                source, dots, first[walk], count[walk], starts[walk], ends[walk], email
            )
        return codes, odd

    def _last_label(
        self,
        source: _Bytes,
        dots: np.ndarray,
        stop: np.ndarray,
        ends: np.ndarray,
        length: np.ndarray,
        last: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(found, node) of the last label of names whose last two labels were printed as
        (``length``, ``last``): a label of up to 8 bytes is cut from that word and searched
        in the sorted one-label words, a longer one looked up in the table."""
        begin = dots[stop - 1] + 1
        size = ends - begin
        if not self._tld_fast:
            top = self._tld.find(source, begin, ends)
            hit = top >= 0
            return hit, self._tld_node[top[hit]]
        # the print's last word holds the range's last 8 bytes (a shorter range from its
        # low byte): the label is its top ``size`` bytes of the used ones
        fits = size <= 8
        used = np.minimum(length, 8)
        label = last >> (np.where(fits, used - size, 0) * 8).astype(_U64)
        i = np.minimum(np.searchsorted(self._tld_words, label), len(self._tld_words) - 1)
        found = fits & (self._tld_words[i] == label) & (self._tld_lengths[i] == size)
        node = self._tld_nodes[i]
        long = np.flatnonzero(~fits)
        if len(long):
            top = self._tld.find(source, begin[long], ends[long])
            found[long] = top >= 0
            node[long] = self._tld_node[np.maximum(top, 0)]
        return found, node[found]

    def _walk(
        self,
        source: _Bytes,
        dots: np.ndarray,
        first: np.ndarray,
        count: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        email: bool,
    ) -> np.ndarray:
        """Every suffix of each name, longest first (the name itself, then after each dot)."""
        steps = count + 1
        total = int(steps.sum())
        row = np.repeat(np.arange(len(starts)), steps)
        depth = np.arange(total) - np.repeat(np.cumsum(steps) - steps, steps)
        dot_at = np.repeat(first, steps) + depth - 1
        begin = np.where(depth == 0, starts[row], dots[np.maximum(dot_at, 0)] + 1)
        node = self._nodes.find(source, begin, ends[row])
        found = node >= 0
        k = np.maximum(node, 0)
        if email:
            part = np.where(found, self._email_suffix[k], 0)
        else:
            private = found & self._private[k] & (depth > 0)
            crossed = np.cumsum(private)
            crossed = crossed - np.repeat(
                crossed[np.cumsum(steps) - steps] - private[np.cumsum(steps) - steps], steps
            )
            part = np.where(
                depth == 0,
                self._full[k],
                np.where(crossed > 0, self._annotating[k], self._suffix[k]),
            )
            part = np.where(found, part, 0)
        return self.codes.reduce(row, part, len(starts))

    # -- addresses -------------------------------------------------------------------------

    def _ipv4(
        self, source: _Bytes, starts: np.ndarray, ends: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(code, odd) of each dotted quad: only canonical ones (no leading zeros, octets up
        to 255) are parsed here."""
        n = len(starts)
        dots = source.positions(_DOT)
        if len(dots) == 3 * n and n and (dots[0::3] > starts).all() and (dots[2::3] < ends).all():
            ok = np.arange(n)  # three dots a row, each in its row
            odd = np.zeros(n, bool)
            inner = dots.reshape(n, 3)
        else:
            first = np.searchsorted(dots, starts)
            odd = np.searchsorted(dots, ends) - first != 3
            ok = np.flatnonzero(~odd)
            inner = np.r_[dots, source.size][first[ok, None] + np.arange(3)]
        m = len(ok)
        # the 4 octets of each address, a row each (positions ascending: the gathers read
        # forwards): start, length, then its digits right-aligned in the low 3 bytes of a
        # 32-bit word (bytes after it shifted out)
        begins = np.empty((m, 4), dtype=_I64)
        begins[:, 0] = starts[ok]
        np.add(inner, 1, out=begins[:, 1:])
        lengths = np.empty((m, 4), dtype=_I64)
        np.subtract(inner, begins[:, :3], out=lengths[:, :3])
        np.subtract(ends[ok], begins[:, 3], out=lengths[:, 3])
        begin = begins.ravel()
        # the length capped at 4 indexes the small tables below (4: too long)
        size = np.minimum(lengths.ravel(), 4).astype(np.uint8)
        shift = _ALIGN32[size]
        word = source.word(begin).astype(np.uint32)
        word <<= shift
        word &= _U32(0xFFFFFF)
        value = (word & _U32(15)) * _U32(100)
        value += ((word >> _U32(8)) & _U32(15)) * _U32(10)
        value += (word >> _U32(16)) & _U32(15)
        # 1 … 3 bytes, each a digit (high nibble 3, low nibble at most 9), no leading zero
        wrong = (word & _U32(0xF0F0F0)) != _PATTERN32[size]
        wrong |= ((word & _U32(0x0F0F0F)) + _U32(0x060606)) & _U32(0xF0F0F0) != 0
        wrong |= _BAD_LENGTH[size]
        wrong |= value > 255
        wrong |= _SEVERAL[size] & ((word >> shift) & _U32(255) == 48)
        wrong = wrong.view(np.uint32) != 0  # an address's 4 octets: 4 bytes side by side
        quad = value.reshape(m, 4)
        number = (quad[:, 0] << _U32(24)) | (quad[:, 1] << _U32(16))
        number |= quad[:, 2] << _U32(8)
        number |= quad[:, 3]
        odd[ok[wrong]] = True
        codes = np.zeros(n, dtype=_I64)
        right = ~wrong
        found = self._v4_blocks[np.where(wrong, 0, number >> _U32(16))]
        search = np.flatnonzero(right & (found < 0))
        found[search] = _find(self._v4_starts, self._v4_codes, number[search].astype(_I64))
        codes[ok[right]] = found[right]
        return codes, odd

    # -- URLs and e-mail -------------------------------------------------------------------

    def _url(self, whole: _Whole, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(code, odd) of each URL: its exact entries merged with its host's hit as a URL's
        (the host cut as ``_url_host`` cuts it, from the lowercased URL)."""
        source = whole.lower
        starts, ends = source.starts[rows], source.ends[rows]
        odd = whole.not_ascii[rows]
        colons = source.positions(_COLON)
        # after the first "://" (most URLs start "https://" or "http://": read in one word)
        head = source.word(starts)
        https = (head == _HTTPS) & (ends - starts >= 8)
        http = ((head & _U64(_HTTP_MASK)) == _HTTP) & (ends - starts >= 7)
        rest = np.where(https, starts + 8, starts + 7)
        other = np.flatnonzero(~(https | http))
        if len(other):
            if len(colons):
                after = np.minimum(colons + 1, source.size - 1)
                marks = colons[
                    (source.data[after] == _SLASH)
                    & (source.data[np.minimum(after + 1, source.size - 1)] == _SLASH)
                ]
            else:
                marks = colons
            begin, end = starts[other], ends[other]
            scheme = _first_at(marks, begin, end - 2)
            rest[other] = np.where(scheme < end - 2, scheme + 3, begin)
        cut = _first_at(source.positions(_SLASH, _QUERY, _HASH), rest, ends)
        at = _last_before(source.positions(_AT), rest, cut)
        host = np.where(at >= 0, at + 1, rest)
        host_end = _first_at(colons, host, cut)
        lead = np.where(host < cut, source.data[np.minimum(host, source.size - 1)], 0)
        odd |= (lead == _OPEN) | ((lead >= 48) & (lead <= 57))  # addresses: one by one
        codes = np.zeros(len(rows), dtype=_I64)
        walk = np.flatnonzero(~odd & (host_end > host))
        if len(walk):
            found, strange = self._hosts(source, host[walk], host_end[walk])
            odd[walk] |= strange
            codes[walk] = self.codes.apply("url", found, self.lists._as_url)
        if len(self._urls):
            lowered = pc.ascii_lower(pc.take(whole.column, pa.array(rows)))
            exact = pc.fill_null(pc.index_in(lowered, value_set=self._urls), -1)
            exact = exact.to_numpy(zero_copy_only=False).astype(_I64)
            codes = self.codes.merge(
                np.where(exact >= 0, self._url_codes[np.maximum(exact, 0)], 0), codes
            )
        return codes, odd

    def _email(self, whole: _Whole, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(code, odd) of each e-mail address: exact entries, its domain's suffixes, regexes."""
        source = whole.lower
        starts, ends = source.starts[rows], source.ends[rows]
        odd = whole.not_ascii[rows]
        at = _last_before(source.positions(_AT), starts, ends)
        domain = np.where(at >= 0, at + 1, starts)
        codes = np.zeros(len(rows), dtype=_I64)
        walk = np.flatnonzero(~odd & (domain < ends))
        if len(walk):
            found, strange = self._hosts(source, domain[walk], ends[walk], email=True)
            codes[walk] = found
            odd[walk] |= strange
        if not len(self._emails) and not self._regexes:
            return codes, odd
        lowered = pc.ascii_lower(pc.take(whole.column, pa.array(rows)))
        if len(self._emails):
            exact = pc.fill_null(pc.index_in(lowered, value_set=self._emails), -1)
            exact = exact.to_numpy(zero_copy_only=False).astype(_I64)
            codes = self.codes.merge(
                np.where(exact >= 0, self._email_codes[np.maximum(exact, 0)], 0), codes
            )
        if self._regexes:  # Python's "$" also matches before a final newline; RE2's does not
            odd |= pc.match_substring(lowered, "\n").to_numpy(zero_copy_only=False)
        for pattern, compiled, code in self._regexes:
            if pattern is None:
                matched = np.array([compiled.search(v) is not None for v in lowered.to_pylist()])
            else:
                matched = pc.match_substring_regex(lowered, pattern).to_numpy(zero_copy_only=False)
            codes = self.codes.merge(codes, np.where(matched, code, 0))
        return codes, odd


class _Whole:
    """The value column's bytes as written (hashes, addresses, domains) and lowercased (URLs,
    e-mail), sharing the positions of punctuation."""

    def __init__(self, column: pa.Array) -> None:
        if column.type != pa.string():
            column = column.cast(pa.string())
        self.column = column
        self.raw = _Bytes(column)
        self._lower: _Bytes | None = None
        self._not_ascii: np.ndarray | None = None

    @property
    def lower(self) -> _Bytes:
        if self._lower is None:
            lower = _Bytes(pc.ascii_lower(self.column))
            if np.array_equal(lower.starts[:1], self.raw.starts[:1]):
                lower.found = self.raw.found  # same offsets: punctuation at the same places
            self._lower = lower
        return self._lower

    @property
    def not_ascii(self) -> np.ndarray:
        """Whether each row holds a non-ASCII byte (lowercased one by one, as Python does)."""
        if self._not_ascii is None:
            self._not_ascii = _rows_of(self.raw, np.flatnonzero(self.raw.data >= 128))
        return self._not_ascii


def _array(values: Sequence[str] | pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    return pa.array(values, pa.string())


def _first_at(positions: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The first of ``positions`` in each [start, end), else end."""
    i = np.searchsorted(positions, starts)
    found = (
        np.where(i < len(positions), positions[np.minimum(i, len(positions) - 1)], -1)
        if len(positions)
        else np.full(len(starts), -1)
    )
    return np.where((found >= starts) & (found < ends), found, ends)


def _last_before(positions: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The last of ``positions`` in each [start, end), else -1."""
    if not len(positions):
        return np.full(len(starts), -1, dtype=_I64)
    i = np.searchsorted(positions, ends) - 1
    found = positions[np.maximum(i, 0)]
    return np.where((i >= 0) & (found >= starts) & (found < ends), found, -1)


def _find(starts: np.ndarray, codes: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """The code of the range each number falls in (0 before the first)."""
    if not len(numbers) or not len(starts):
        return np.zeros(len(numbers), dtype=_I64)
    order = np.argsort(numbers)
    slot = np.searchsorted(starts, numbers[order], side="right") - 1
    out = np.empty(len(numbers), dtype=_I64)
    out[order] = np.where(slot >= 0, codes[np.maximum(slot, 0)], 0)
    return out


# the high nibbles of a right-aligned octet of 0…3 digits, and the shift that right-aligns
# it, by length capped at 4 (4: too long, checked by _BAD_LENGTH)
_PATTERN32 = np.array([0, 0x300000, 0x303000, 0x303030, 0x303030], dtype=np.uint32)
_ALIGN32 = np.array([24, 16, 8, 0, 0], dtype=np.uint32)
_BAD_LENGTH = np.array([True, False, False, False, True])
_SEVERAL = np.array([False, False, True, True, True])  # more than one digit
_HEXA = np.full(256, 255, dtype=np.uint8)
_HEXA[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)
_HEXA[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16, dtype=np.uint8)


def _ipv6(
    checker: BatchChecker, source: _Bytes, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(code, odd) of each IPv6 address written in hex groups (``::`` allowed); any other
    form (an embedded IPv4 address, a zone) is odd."""
    n = len(starts)
    odd = (ends - starts < 2) | (ends - starts > 39)
    colons = source.positions(_COLON)
    first = np.searchsorted(colons, starts)
    count = np.searchsorted(colons, ends) - first
    odd |= (count < 2) | (count > 7)
    ok = np.flatnonzero(~odd)
    codes = np.zeros(n, dtype=_I64)
    if not len(ok):
        return codes, odd
    colons = np.r_[colons, source.size]
    # the groups of each address: from its start or a colon to the next colon or its end
    groups = count[ok] + 1
    total = int(groups.sum())
    firsts = np.cumsum(groups) - groups
    lasts = firsts + groups - 1
    row = np.repeat(np.arange(len(ok)), groups)
    index = np.arange(total) - firsts[row]
    colon_at = first[ok][row] + index
    begin = np.where(index == 0, starts[ok][row], colons[np.maximum(colon_at - 1, 0)] + 1)
    end = np.where(index == groups[row] - 1, ends[ok][row], colons[colon_at])
    length = end - begin
    wrong = np.bincount(row, weights=length > 4, minlength=len(ok)) > 0
    word = source.word(begin)
    number = np.zeros(total, dtype=_U64)
    for j in range(4):
        digit = _HEXA[((word >> _U64(8 * j)) & _U64(255)).astype(np.intp)]
        used = j < length
        wrong |= np.bincount(row, weights=used & (digit == 255), minlength=len(ok)) > 0
        number = np.where(used, (number << _U64(4)) | digit.astype(_U64), number)
    # "::": one empty group inside, two at either end, or three for "::" alone
    empty = length == 0
    empties = np.bincount(row, weights=empty, minlength=len(ok)).astype(_I64)
    lead = empty[firsts] & empty[firsts + 1]
    trail = empty[lasts] & empty[lasts - 1]
    alone = (groups == 3) & (empties == 3)
    inside = (empties == 1) & ~empty[firsts] & ~empty[lasts]
    at_end = (empties == 2) & (lead ^ trail)
    compressed = alone | inside | at_end
    explicit = groups - empties
    wrong |= ~compressed & (empties != 0)
    wrong |= np.where(compressed, explicit > 7, explicit != 8)
    # each written group's place among the 8: counted from the left before the "::", from
    # the right after it
    written = (~empty).astype(_I64)
    seen = np.cumsum(written)
    rank = seen - (seen[firsts] - written[firsts])[row] - 1
    gaps = np.cumsum(empty)
    after = gaps - (gaps[firsts] - empty[firsts])[row] > 0
    place = np.where(after, 8 - explicit[row] + rank, rank)
    keep = ~empty & ~wrong[row]
    matrix = np.zeros((len(ok), 8), dtype=_U64)
    matrix[row[keep], place[keep]] = number[keep]
    shifts = np.array([48, 32, 16, 0], dtype=_U64)
    high = np.bitwise_or.reduce(matrix[:, :4] << shifts, axis=1)
    low = np.bitwise_or.reduce(matrix[:, 4:] << shifts, axis=1)
    odd[ok[wrong]] = True
    right = np.flatnonzero(~wrong)
    codes[ok[right]] = _find128(checker, high[right], low[right])
    return codes, odd


def _rows_of(source: _Bytes, positions: np.ndarray) -> np.ndarray:
    """Whether each row holds one of the byte ``positions``."""
    rows = np.zeros(len(source.starts), bool)
    if len(positions) and len(source.starts):
        inside = positions[(positions >= source.starts[0]) & (positions < source.ends[-1])]
        rows[np.searchsorted(source.starts, inside, side="right") - 1] = True
    return rows


def _find128(checker: BatchChecker, high: np.ndarray, low: np.ndarray) -> np.ndarray:
    hi, lo, slots = checker._v6_hi, checker._v6_lo, checker._v6_slot
    if not len(high) or not len(hi):
        return np.zeros(len(high), dtype=_I64)
    a = np.searchsorted(hi, high, side="left")
    b = np.searchsorted(hi, high, side="right")
    # among the starts with the same high word, those with a low word ≤ the address's
    left, right = a.copy(), b.copy()
    while True:
        live = left < right
        if not live.any():
            break
        mid = (left + right) // 2
        le = lo[np.minimum(mid, len(lo) - 1)] <= low
        left = np.where(live & le, mid + 1, left)
        right = np.where(live & ~le, mid, right)
    slot = left - 1
    return np.where(slot >= 0, slots[np.maximum(slot, 0)], 0)


def _re2(pattern: str, flags: int) -> str | None:
    """A Python pattern as RE2 syntax for pyarrow (None: RE2 cannot run it)."""
    text = ("(?i)" if flags & re.IGNORECASE else "") + pattern.replace("\\@", "@")
    try:
        pc.match_substring_regex(pa.array([""]), text)
    except pa.ArrowInvalid:
        return None
    return text
