"""The store: articles and sightings in Parquet, replaced as a whole generation at a time.

Layout under the store root::

    CURRENT                   name of the live generation ("gen-000007")
    gen-000007/articles.parquet
    gen-000007/sightings.parquet
    gen-000007/state.json     {"as_of": unix seconds of the last ingest, "sources": {...}}
    gen-000007/revisions.parquet  the articles' revision history (absent in older stores)

Each sighting also carries ``ingested_at``: the time of the ingest that first stored it. A merge
keeps it for a sighting the store already held (same article, type and value, article
publication time unchanged) and gives every other sighting the merge's time, later than every
``ingested_at`` already stored. Stores written before the column existed read it as the
article's publication time. The TAXII ``date_added`` of an object derives from it
(docs/taxii.md).

Re-reading an article (same id) updates it without losing anything seen: its stored sightings
stay unless the new read has them too (then the new read's context and confidence win), and
its tags and techniques are the union of both reads. Withdrawing an indicator is not something
a shorter feed body can do.

A merge writes a complete new generation beside the live one and then swaps ``CURRENT`` with
``os.replace``, so an interrupted ingest leaves the previous generation intact.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from generator.errors import CorruptFile

ARTICLE_SCHEMA = pa.schema(
    [
        ("article_id", pa.string()),
        ("source_id", pa.string()),
        ("feed_name", pa.string()),
        ("category", pa.string()),
        ("title", pa.string()),
        ("url", pa.string()),
        ("published", pa.int64()),
        ("tags", pa.list_(pa.string())),
        ("techniques", pa.list_(pa.string())),
        ("categories", pa.list_(pa.string())),  # the feed's own categories, as read
        ("tlp", pa.string()),  # the source's TLP 2.0 level
    ]
)
# What an article column holds in a store written before it existed.
ARTICLE_DEFAULTS: dict[str, Any] = {"categories": [], "tlp": "clear"}
SIGHTING_SCHEMA = pa.schema(
    [
        ("article_id", pa.string()),
        ("type", pa.string()),
        ("value", pa.string()),
        ("context", pa.string()),
        ("confidence", pa.string()),
        ("defanged", pa.bool_()),
    ]
)
INGESTED_AT = pa.field("ingested_at", pa.int64())
# One row per update that changed a stored article: what it was before (title, url, published)
# and what the new read brought (sightings read, new ones, stored ones it lacked and that stayed).
REVISION_SCHEMA = pa.schema(
    [
        ("article_id", pa.string()),
        ("revised_at", pa.int64()),
        ("title", pa.string()),
        ("url", pa.string()),
        ("published", pa.int64()),
        ("read", pa.int64()),
        ("added", pa.int64()),
        ("kept", pa.int64()),
    ]
)
KEEP_GENERATIONS = 2
SYNCED = "SYNCED"  # the id of the bucket's store generation the local one descends from


@dataclass(frozen=True, slots=True)
class Article:
    article_id: str
    source_id: str
    feed_name: str
    category: str
    title: str
    url: str
    published: int
    tags: tuple[str, ...] = ()
    techniques: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    tlp: str = "clear"


@dataclass(frozen=True, slots=True)
class Sighting:
    article_id: str
    type: str
    value: str
    context: str
    confidence: str
    defanged: bool = False


@dataclass(slots=True)
class MergeStats:
    articles_added: int = 0
    articles_updated: int = 0
    sightings: int = 0
    sightings_kept: int = 0  # stored sightings an updated article's new read no longer had
    per_source: dict[str, int] = field(default_factory=dict)


class Store:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # --- reading -------------------------------------------------------------------------
    def generation(self) -> Path | None:
        try:
            name = (self.root / "CURRENT").read_text().strip()
        except FileNotFoundError:
            return None
        return self.root / name

    def files(self) -> dict[str, Path]:
        """The live generation's files by name (none without a generation)."""
        gen = self.generation()
        if gen is None or not gen.is_dir():
            return {}
        return {p.name: p for p in sorted(gen.iterdir()) if p.is_file() and p.name[0] != "."}

    def counts(self) -> tuple[int, int]:
        """(articles, sightings) of the live generation, read from the Parquet footers."""
        files = self.files()
        return tuple(  # type: ignore[return-value]
            _rows(files[name]) if name in files else 0
            for name in ("articles.parquet", "sightings.parquet")
        )

    def synced(self) -> str | None:
        """The bucket store generation this store was restored from or last published as."""
        try:
            return (self.root / SYNCED).read_text().strip() or None
        except FileNotFoundError:
            return None

    def mark_synced(self, store_id: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f"{SYNCED}.tmp"
        tmp.write_text(store_id)
        os.replace(tmp, self.root / SYNCED)

    def install(self, files: Mapping[str, bytes]) -> None:
        """Make a generation holding exactly ``files`` (name → bytes) live, as a merge would."""
        gen, number = self._new_generation()
        for name, data in sorted(files.items()):
            (gen / name).write_bytes(data)
        self._activate(gen, number)

    def exists(self) -> bool:
        """Whether a generation was ever committed here (by an ingest or :meth:`init`)."""
        return self.generation() is not None

    def init(self) -> bool:
        """Commit an empty first generation unless one exists; answer whether it did."""
        if self.exists():
            return False
        self.commit(
            ARTICLE_SCHEMA.empty_table(),
            SIGHTING_SCHEMA.empty_table(),
            {"as_of": None, "sources": {}},
        )
        return True

    def articles(self) -> pa.Table:
        """The articles; a column the store was written without reads as its default."""
        table = self._table("articles.parquet", ARTICLE_SCHEMA)
        legacy = pc.is_null(table["categories"])  # written before tags and categories parted
        for name, default in ARTICLE_DEFAULTS.items():
            column = table[name]
            if column.null_count:
                field = ARTICLE_SCHEMA.field(name)
                filled = [default if v is None else v for v in column.to_pylist()]
                table = table.set_column(
                    table.schema.get_field_index(name), field, pa.array(filled, field.type)
                )
        return clean_tags(table, legacy)

    def sightings(self) -> pa.Table:
        """The sightings with their ``ingested_at`` (see the module docstring)."""
        table = self._table("sightings.parquet", SIGHTING_SCHEMA.append(INGESTED_AT))
        return with_ingested_at(table, self.articles())

    def revisions(self) -> pa.Table:
        """Every update that changed a stored article, oldest first (``REVISION_SCHEMA``)."""
        gen = self.generation()
        if gen is None or not (gen / "revisions.parquet").is_file():
            return REVISION_SCHEMA.empty_table()
        return _read_table(gen / "revisions.parquet", REVISION_SCHEMA)

    def state(self) -> dict[str, Any]:
        gen = self.generation()
        if gen is None:
            return {"as_of": None, "sources": {}}
        path = gen / "state.json"
        try:
            return json.loads(path.read_text())
        except (ValueError, OSError) as exc:
            raise CorruptFile(
                f"the store file {path} cannot be read ({exc}); restore the store folder "
                "from a backup, or move it away and ingest again"
            ) from exc

    def _table(self, name: str, schema: pa.Schema) -> pa.Table:
        gen = self.generation()
        if gen is None:
            return schema.empty_table()
        return _read_table(gen / name, schema)

    # --- writing -------------------------------------------------------------------------
    def merge(
        self,
        articles: Iterable[Article],
        sightings: Iterable[Sighting],
        *,
        as_of: int,
        sources_state: dict[str, Any] | None = None,
    ) -> MergeStats:
        """Add articles or update them, and commit a new generation.

        An update never loses what was seen: an article read again (a known id) keeps every
        sighting the store holds for it that the new read lacks, and the union of its tags
        and techniques; its title, URL and date are the new read's (an empty title or URL
        keeps the stored one). A shorter or emptied body therefore adds nothing and removes
        nothing. Each update that changed a stored article is added to :meth:`revisions`.
        """
        old_articles, old_sightings = self.articles(), self.sightings()
        new_articles = _keep_labels(_articles_table(articles), old_articles)
        fresh = _sightings_table(sightings)
        carried = _carried(old_sightings, new_articles, fresh)
        new_sightings = _stamp(
            pa.concat_tables([fresh, carried]), new_articles, old_articles, old_sightings, as_of
        )
        history = self.revisions()
        revised = _revisions(
            old_articles, old_sightings, new_articles, fresh, carried, as_of, history
        )
        replaced = pc.is_in(old_articles["article_id"], value_set=new_articles["article_id"])
        stats = MergeStats(
            articles_updated=pc.sum(replaced).as_py() or 0,
            sightings=new_sightings.num_rows,
            sightings_kept=carried.num_rows,
        )
        stats.articles_added = new_articles.num_rows - stats.articles_updated
        merged_articles = pa.concat_tables([old_articles.filter(pc.invert(replaced)), new_articles])
        keep = pc.invert(
            pc.is_in(old_sightings["article_id"], value_set=new_articles["article_id"])
        )
        merged_sightings = pa.concat_tables([old_sightings.filter(keep), new_sightings])
        state = self.state()
        state["as_of"] = max(as_of, state.get("as_of") or 0)
        state["sources"].update(sources_state or {})
        self.commit(
            merged_articles, merged_sightings, state, revisions=pa.concat_tables([history, revised])
        )
        return stats

    def commit(
        self,
        articles: pa.Table,
        sightings: pa.Table,
        state: dict[str, Any],
        *,
        revisions: pa.Table | None = None,
    ) -> None:
        """Write a new generation and make it live; ``revisions`` (default: the live
        generation's) is the whole revision history."""
        if revisions is None:
            revisions = self.revisions()
        articles = articles.sort_by([("article_id", "ascending")])
        sightings = with_ingested_at(sightings, articles)
        sightings = sightings.sort_by(
            [("article_id", "ascending"), ("type", "ascending"), ("value", "ascending")]
        )
        gen, number = self._new_generation()
        pq.write_table(articles, gen / "articles.parquet")
        pq.write_table(sightings, gen / "sightings.parquet")
        pq.write_table(revisions.cast(REVISION_SCHEMA), gen / "revisions.parquet")
        (gen / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True))
        self._activate(gen, number)

    def _new_generation(self) -> tuple[Path, int]:
        """An empty folder for the next generation, and its number."""
        self.root.mkdir(parents=True, exist_ok=True)
        current = self.generation()
        number = int(current.name.split("-")[1]) + 1 if current else 1
        gen = self.root / f"gen-{number:06d}"
        shutil.rmtree(gen, ignore_errors=True)
        gen.mkdir()
        return gen, number

    def _activate(self, gen: Path, number: int) -> None:
        """Flush ``gen`` to disk, then swap ``CURRENT`` to it in one rename."""
        _fsync_dir(gen)
        tmp = self.root / "CURRENT.tmp"
        tmp.write_text(gen.name)
        os.replace(tmp, self.root / "CURRENT")
        self._prune(number)

    def _prune(self, number: int) -> None:
        for old in self.root.glob("gen-*"):
            if int(old.name.split("-")[1]) <= number - KEEP_GENERATIONS:
                shutil.rmtree(old, ignore_errors=True)


def clean_tags(articles: pa.Table, legacy: pa.ChunkedArray | pa.Array) -> pa.Table:
    """``articles`` with the tags of the ``legacy`` rows (written before articles had
    ``categories``, when tags still held the feed's RSS categories) that are not a family,
    actor or tool of the bundled list (``generator/data/families.txt``) moved to
    ``categories``: such stores read as a new ingest would write them. Rows written since are
    left as they are."""
    from generator.extract.tags import load_families

    if not pc.any(legacy).as_py():
        return articles
    known = pa.array(sorted(set(load_families().values())), pa.string())
    flat = pc.list_flatten(articles["tags"].filter(legacy))
    if len(flat) == 0 or pc.all(pc.is_in(flat, value_set=known)).as_py():
        return articles
    names = set(known.to_pylist())
    tags, categories = [], []
    for old, row_tags, row_categories in zip(
        legacy.to_pylist(),
        articles["tags"].to_pylist(),
        articles["categories"].to_pylist(),
        strict=True,
    ):
        if not old:
            tags.append(row_tags)
            categories.append(row_categories)
            continue
        tags.append([t for t in row_tags if t in names])
        moved = {t for t in row_tags if t not in names}
        categories.append(sorted(moved.union(row_categories)) if moved else row_categories)
    for name, column in (("tags", tags), ("categories", categories)):
        field = ARTICLE_SCHEMA.field(name)
        articles = articles.set_column(
            articles.schema.get_field_index(name), field, pa.array(column, field.type)
        )
    return articles


def _articles_table(articles: Iterable[Article]) -> pa.Table:
    rows = {a.article_id: a for a in articles}  # last one wins within a batch
    cols = {name: [getattr(a, name) for a in rows.values()] for name in ARTICLE_SCHEMA.names}
    cols["tags"] = [list(t) for t in cols["tags"]]
    cols["techniques"] = [list(t) for t in cols["techniques"]]
    cols["categories"] = [list(t) for t in cols["categories"]]
    return pa.table(cols, schema=ARTICLE_SCHEMA)


def _sightings_table(sightings: Iterable[Sighting]) -> pa.Table:
    rows = {(s.article_id, s.type, s.value): s for s in sightings}
    cols = {name: [getattr(s, name) for s in rows.values()] for name in SIGHTING_SCHEMA.names}
    return pa.table(cols, schema=SIGHTING_SCHEMA)


def _carried(old: pa.Table, new_articles: pa.Table, fresh: pa.Table) -> pa.Table:
    """The stored sightings of re-read articles that their new read lacks (schema columns)."""
    mine = old.filter(pc.is_in(old["article_id"], value_set=new_articles["article_id"]))
    gone = pc.invert(pc.is_in(_key(mine), value_set=_key(fresh)))
    return mine.filter(gone).select(SIGHTING_SCHEMA.names)


def _revisions(
    old_articles: pa.Table,
    old_sightings: pa.Table,
    new_articles: pa.Table,
    fresh: pa.Table,
    carried: pa.Table,
    as_of: int,
    history: pa.Table,
) -> pa.Table:
    """The revision rows of this merge: each stored article the new read changed (new
    sightings, another title, URL or date, or fewer sightings than the read before: the same
    short read every hour is one revision, not one an hour)."""
    updated = pc.is_in(old_articles["article_id"], value_set=new_articles["article_id"])
    before = {r["article_id"]: r for r in old_articles.filter(updated).to_pylist()}
    if not before:
        return REVISION_SCHEMA.empty_table()
    ids = pa.array(sorted(before), pa.string())
    stored = old_sightings.filter(pc.is_in(old_sightings["article_id"], value_set=ids))
    known = set(_key(stored).to_pylist())
    mine = fresh.filter(pc.is_in(fresh["article_id"], value_set=ids))
    read: dict[str, int] = {}
    added: dict[str, int] = {}
    for aid, key in zip(mine["article_id"].to_pylist(), _key(mine).to_pylist(), strict=True):
        read[aid] = read.get(aid, 0) + 1
        added[aid] = added.get(aid, 0) + (key not in known)
    kept: dict[str, int] = {}
    for aid in carried["article_id"].to_pylist():
        kept[aid] = kept.get(aid, 0) + 1
    after = {
        r["article_id"]: r
        for r in new_articles.filter(
            pc.is_in(new_articles["article_id"], value_set=ids)
        ).to_pylist()
    }
    last_kept = dict(
        zip(history["article_id"].to_pylist(), history["kept"].to_pylist(), strict=True)
    )  # the latest revision of each article wins
    rows = []
    for aid, old in before.items():
        new = after[aid]
        moved = any(old[f] != new[f] for f in ("title", "url", "published"))
        if moved or added.get(aid) or kept.get(aid, 0) != last_kept.get(aid, 0):
            rows.append(
                {
                    "article_id": aid,
                    "revised_at": as_of,
                    "title": old["title"],
                    "url": old["url"],
                    "published": old["published"],
                    "read": read.get(aid, 0),
                    "added": added.get(aid, 0),
                    "kept": kept.get(aid, 0),
                }
            )
    rows.sort(key=lambda r: r["article_id"])
    return pa.Table.from_pylist(rows, schema=REVISION_SCHEMA)


def _keep_labels(new: pa.Table, old: pa.Table) -> pa.Table:
    """``new`` with each updated article's tags and techniques joined with the stored ones,
    and its stored title and URL where the new read has none."""
    at = pc.index_in(new["article_id"], value_set=old["article_id"]).to_pylist()
    if not any(i is not None for i in at):
        return new
    for name in ("title", "url"):
        before, now = old[name].to_pylist(), new[name].to_pylist()
        merged = [before[i] if i is not None and not n else n for n, i in zip(now, at, strict=True)]
        new = new.set_column(
            new.schema.get_field_index(name),
            ARTICLE_SCHEMA.field(name),
            pa.array(merged, pa.string()),
        )
    for name in ("tags", "techniques", "categories"):
        before, now = old[name].to_pylist(), new[name].to_pylist()
        merged = [
            sorted(set(n) | set(before[i])) if i is not None else n
            for n, i in zip(now, at, strict=True)
        ]
        new = new.set_column(
            new.schema.get_field_index(name),
            ARTICLE_SCHEMA.field(name),
            pa.array(merged, ARTICLE_SCHEMA.field(name).type),
        )
    return new


def _published_of(sightings: pa.Table, articles: pa.Table) -> pa.Array:
    """The publication time of each sighting's article (null when the article is unknown)."""
    at = pc.index_in(sightings["article_id"], value_set=articles["article_id"])
    return pc.take(articles["published"], at)


def with_ingested_at(sightings: pa.Table, articles: pa.Table) -> pa.Table:
    """``sightings`` with an ``ingested_at`` column; missing values read as ``published``."""
    names = sightings.column_names
    if "ingested_at" not in names:
        column = _published_of(sightings, articles)
    elif sightings["ingested_at"].null_count:
        column = pc.coalesce(sightings["ingested_at"], _published_of(sightings, articles))
    else:
        return sightings
    column = pc.coalesce(column, pa.scalar(0, pa.int64()))
    if "ingested_at" in names:
        return sightings.set_column(names.index("ingested_at"), INGESTED_AT, column)
    return sightings.append_column(INGESTED_AT, column)


def _key(sightings: pa.Table) -> pa.Array:
    return pc.binary_join_element_wise(
        sightings["article_id"], sightings["type"], sightings["value"], "\0"
    )


def _stamp(
    new: pa.Table, new_articles: pa.Table, old_articles: pa.Table, old: pa.Table, as_of: int
) -> pa.Table:
    """``new`` with ``ingested_at``: kept for sightings already stored, else a fresh stamp.

    The fresh stamp is ``as_of``, or one second after the latest stored stamp when the clock
    has not moved past it, so a merge's new sightings always come after everything before.
    """
    latest = pc.max(old["ingested_at"]).as_py() if old.num_rows else None
    stamp = as_of if latest is None else max(as_of, latest + 1)
    at = pc.index_in(_key(new), value_set=_key(old))
    kept = pc.take(old["ingested_at"], at)
    same_date = pc.equal(_published_of(new, new_articles), _published_of(new, old_articles))
    kept = pc.if_else(pc.fill_null(same_date, False), kept, None)
    return new.append_column(INGESTED_AT, pc.fill_null(kept, pa.scalar(stamp, pa.int64())))


def _read_table(path: Path, schema: pa.Schema) -> pa.Table:
    """A store table; a damaged or unreadable file is a :class:`CorruptFile` naming it."""
    try:
        return pq.read_table(path, schema=schema)
    except (pa.ArrowException, OSError) as exc:
        raise CorruptFile(
            f"the store file {path} cannot be read ({exc}); restore the store folder "
            "from a backup, or move it away and ingest again"
        ) from exc


def _rows(path: Path) -> int:
    try:
        return int(pq.read_metadata(path).num_rows)
    except (pa.ArrowException, OSError) as exc:
        raise CorruptFile(
            f"the store file {path} cannot be read ({exc}); restore the store folder "
            "from a backup, or move it away and ingest again"
        ) from exc


def _fsync_dir(path: Path) -> None:
    for child in path.iterdir():
        with open(child, "rb") as fh:
            os.fsync(fh.fileno())
