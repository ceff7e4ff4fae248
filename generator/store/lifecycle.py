"""An indicator's state at build time: active, expired, suppressed or withdrawn (docs/lifecycle.md).

Decided from the store, the policy and the build's clock alone, so a build stays a pure function
of (store, policy, ``--now``):

- ``valid_until`` = ``last_seen`` + the lifetime of the indicator's type and confidence
  (:data:`DEFAULT_LIFETIMES`, overridden per type or per type and confidence by the ``expiry``
  setting). ``last_seen`` is its latest sighting, so each new sighting renews it.
- ``warnings``: the warninglists it is on (``generator/extract/warninglists.py``).
- ``status``, the first that holds: ``withdrawn`` (an operator's ``block`` entry, or every
  article that reported it retracted: :class:`Retraction`), ``suppressed``
  (a suppressing list hit, unless an operator's ``allow`` entry names it), ``expired``
  (``valid_until`` ≤ the build time), else ``active``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from generator.errors import SocdefError
from generator.extract.warninglists import Hit, Warninglists

DAY = 86_400
ACTIVE, EXPIRED, SUPPRESSED, WITHDRAWN = "active", "expired", "suppressed", "withdrawn"
STATUSES = (ACTIVE, EXPIRED, SUPPRESSED, WITHDRAWN)
RETRACTED = "source-retraction"  # the warning of an indicator its sources took back
CONFIDENCES = ("low", "medium", "high")

# Days an indicator stays active after its latest sighting, by type and confidence (low,
# medium, high). IPs, domains, files and e-mail: the day OpenCTI's decay rule for the type
# (score = s0 * (1 - (t/L)^(1/(3*pound)))) falls to its revoke score 20 from an initial score of
# 50, 80 and 100; MISP's nids-simple model (an IP decays below threshold after ~47 days) is the
# upper bound for addresses. URLs: OpenCTI's former fixed TTLs (60 days, 180 for higher
# markings), since a URL names one resource on a host and lives longer than the host's address;
# and at least as long as the domain's low-confidence lifetime. Hashes: never reassigned, so at
# least OpenCTI's former 365 days, and more with confidence. CVE and ATT&CK ids: context that
# does not go stale, 3 years.
DEFAULT_LIFETIMES: dict[str, tuple[int, int, int]] = {
    "ipv4": (20, 29, 33),
    "ipv6": (20, 29, 33),
    "domain": (103, 164, 188),
    "url": (60, 120, 180),
    "email": (275, 348, 372),
    "md5": (365, 730, 1095),
    "sha1": (365, 730, 1095),
    "sha256": (365, 730, 1095),
    "sha512": (365, 730, 1095),
    "cve": (1095, 1095, 1095),
    "mitre_attack": (1095, 1095, 1095),
}


class PolicyError(SocdefError, ValueError):
    """The expiry setting cannot be read."""


@dataclass(frozen=True, slots=True)
class Expiry:
    """Lifetimes in days by (type, confidence)."""

    days: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def lifetime(self, type_: str, confidence: str) -> int:
        days = self.days.get((type_, confidence))
        if days is None:
            defaults = DEFAULT_LIFETIMES.get(type_, DEFAULT_LIFETIMES["url"])
            days = defaults[CONFIDENCES.index(confidence) if confidence in CONFIDENCES else 0]
        return days


def expiry(setting: str = "") -> Expiry:
    """The defaults with ``setting`` applied: comma-separated ``type=days`` (every confidence)
    or ``type:confidence=days`` entries, e.g. ``ipv4=14,url:high=365``. Every bad entry is
    reported at once."""
    days = {
        (type_, level): lifetimes[i]
        for type_, lifetimes in DEFAULT_LIFETIMES.items()
        for i, level in enumerate(CONFIDENCES)
    }
    problems = []
    for entry in filter(None, (e.strip() for e in setting.split(","))):
        key, _, value = entry.partition("=")
        type_, _, level = key.strip().partition(":")
        levels = [level] if level else list(CONFIDENCES)
        if type_ not in DEFAULT_LIFETIMES or any(lv not in CONFIDENCES for lv in levels):
            problems.append(f"{entry!r}: expected TYPE=DAYS or TYPE:CONFIDENCE=DAYS")
        elif not value.strip().isdigit() or int(value) < 1:
            problems.append(f"{entry!r}: days must be a whole number of at least 1")
        else:
            days.update({(type_, lv): int(value) for lv in levels})
    if problems:
        raise PolicyError("expiry: " + "; ".join(problems))
    return Expiry(days)


class RetractionError(SocdefError, ValueError):
    """The retractions file cannot be read."""


@dataclass(frozen=True, slots=True)
class Retraction:
    """An article its source took back (removed, or corrected so it no longer names what it
    named): every indicator seen only in retracted articles is withdrawn."""

    article: str  # the article's URL or id, as the operator named it
    at: int  # when it was retracted (Unix seconds)
    reason: str = ""

    def line(self) -> str:
        when = datetime.fromtimestamp(self.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{when} {self.article}" + (f" {self.reason}" if self.reason else "") + "\n"


LEDGER_BESIDE_BUILD = "lifecycle-ledger.json"  # in the build folder: the latest build's ledger


def published_ledger_key(build_id: str) -> str:
    """Where publish keeps the ledger build ``build_id`` left, beside the build in the bucket,
    so a build on a machine without this data folder dates changes as this one would."""
    return f"builds/{build_id}/lifecycle.json.gz"


def parse_retractions(text: str, origin: str = "retractions") -> list[Retraction]:
    """``retractions.txt``: one ``TIME ARTICLE [REASON]`` a line (TIME in ISO 8601 UTC, ARTICLE
    an article's URL or id); blank lines and lines starting with ``#`` are skipped. Every bad
    line is reported at once, with its number."""
    found, problems = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        try:
            if len(parts) < 2:
                raise ValueError("expected TIME ARTICLE [REASON]")
            stamp = datetime.fromisoformat(parts[0])
            if stamp.tzinfo is None:
                raise ValueError(f"{parts[0]!r} has no time zone (write it as ...Z)")
            found.append(Retraction(parts[1], int(stamp.timestamp()), " ".join(parts[2:])))
        except ValueError as err:
            problems.append(f"line {number}: {err}")
    if problems:
        raise RetractionError(f"{origin}: " + "; ".join(problems))
    return found


def retracted_articles(entries: Iterable[Retraction], articles: pa.Table) -> dict[str, int]:
    """Each retracted article's id and when it was retracted (the earliest entry naming it by
    URL or id); entries that name no article of the store are left out."""
    ids = articles["article_id"].to_pylist()
    by_name = dict(zip(articles["url"].to_pylist(), ids, strict=True))
    by_name.update(zip(ids, ids, strict=True))
    out: dict[str, int] = {}
    for entry in entries:
        article = by_name.get(entry.article)
        if article is not None:
            out[article] = min(entry.at, out.get(article, entry.at))
    return out


@dataclass(frozen=True, slots=True)
class State:
    status: str
    valid_until: int
    warnings: tuple[str, ...]
    changed_at: int  # when it entered the state (every format's latest version)


@dataclass(slots=True)
class Ledger:
    """What earlier builds decided, so a change after publication is dated after it.

    TAXII gives a new version a ``date_added`` from its time (``generator/build/taxii_order.py``);
    a poller receives it only if that lies after everything already published. A suppression
    by a list that changed, or a block, after the indicator was published would otherwise be
    dated just after its last version or at the last ingest, inside what pollers already read.
    So each ``socdef build`` keeps, beside the store (``lifecycle.json``): ``through``, the
    latest version time of its records, and ``changes``, the state and time of change of every
    suppressed or withdrawn record (and of an expired one whose change it had to move). The
    next build keeps those times for records still in that state, and dates a new change at or
    before ``through`` at ``through`` + 1 s: after every object of every earlier build, the
    same in every later build. The ledger is an input like the overrides file: the same
    store, settings, ledger and ``--now`` give the same build.
    """

    through: int = 0
    changes: dict[str, tuple[str, int]] = field(default_factory=dict)

    @staticmethod
    def key(type_: str, value: str) -> str:
        return f"{type_} {value}"

    @classmethod
    def parse(cls, raw: object) -> Ledger:
        """A ledger from its JSON (``{"through": int, "changes": {key: [status, time]}}``)."""
        try:
            assert isinstance(raw, dict)
            changes = {str(k): (str(v[0]), int(v[1])) for k, v in raw["changes"].items()}
            return cls(int(raw["through"]), changes)
        except (AssertionError, KeyError, TypeError, ValueError, IndexError, AttributeError):
            raise PolicyError(
                "the lifecycle ledger cannot be read; remove it to start over"
            ) from None

    def dump(self) -> dict[str, object]:
        return {
            "through": self.through,
            "changes": {k: list(v) for k, v in sorted(self.changes.items())},
        }


@dataclass(slots=True)
class Lifecycle:
    """What the build needs to decide states: the compiled lists, the expiry policy, its clock."""

    lists: Warninglists | None
    policy: Expiry
    now: int
    retracted: Mapping[str, int] = field(default_factory=dict)  # article id -> when
    before: Ledger = field(default_factory=Ledger)  # what earlier builds decided
    after: Ledger = field(default_factory=Ledger)  # what this build decides (filled as it goes)
    _checker: object = None

    def dated(self, type_: str, value: str, state: State, last_version: int) -> State:
        """``state`` with its time of change kept from the ledger, or moved past everything
        earlier builds published; and this build's ledger updated."""
        key = Ledger.key(type_, value)
        kept = self.before.changes.get(key)
        changed_at = state.changed_at
        if state.status != ACTIVE:
            if kept is not None and kept[0] == state.status and kept[1] > last_version:
                changed_at = kept[1]
            elif self.before.through and changed_at <= self.before.through:
                changed_at = self.before.through + 1
            if state.status != EXPIRED or changed_at != state.changed_at:
                self.after.changes[key] = (state.status, changed_at)
            state = State(state.status, state.valid_until, state.warnings, changed_at)
        self.after.through = max(self.after.through, changed_at, last_version)
        return state

    def retracted_at(self, articles: Sequence[str]) -> int | None:
        """When the last of ``articles`` was retracted, if every one of them was."""
        if not articles or not self.retracted:
            return None
        times = [self.retracted.get(a) for a in articles]
        return None if None in times else max(t for t in times if t is not None)

    def state(
        self,
        type_: str,
        confidence: str,
        last_seen: int,
        hit: Hit | None,
        last_version: int = 0,
        articles: Sequence[str] = (),
    ) -> State:
        """The state of an indicator last seen at ``last_seen`` whose latest version was
        stored at ``last_version``. ``changed_at``: ``valid_until`` for an expired one; for a
        suppressed one, just after its latest version (a list names it from the start, so it
        is taken back in the version after the one that first showed it); for a withdrawn one,
        the build's time (an operator's block comes after publication: a poller that read the
        previous build must see it); for one every article of which (``articles``) was
        retracted, when the last of them was."""
        valid_until = last_seen + self.policy.lifetime(type_, confidence) * DAY
        warnings = hit.lists if hit is not None else ()
        after = max(last_seen, last_version) + 1
        if hit is not None and hit.block:
            return State(WITHDRAWN, valid_until, warnings, max(self.now, after))
        retracted = self.retracted_at(articles)
        if retracted is not None:
            marked = tuple(sorted({*warnings, RETRACTED}))
            return State(WITHDRAWN, valid_until, marked, max(retracted, after))
        if hit is not None and hit.suppress and not hit.allow:
            return State(SUPPRESSED, valid_until, warnings, after)
        if valid_until <= self.now:
            return State(EXPIRED, valid_until, warnings, max(valid_until, after))
        return State(ACTIVE, valid_until, warnings, last_seen)

    def hits(self, types: Sequence[str], values: Sequence[str]) -> list[Hit | None]:
        """The warninglist hit of each indicator (the column path)."""
        if self.lists is None:
            return [None] * len(values)
        from generator.extract.warninglist_batch import BatchChecker

        if self._checker is None:
            self._checker = BatchChecker(self.lists)
        assert isinstance(self._checker, BatchChecker)
        return self._checker.check(types, values)
