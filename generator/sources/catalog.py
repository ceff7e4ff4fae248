"""The configured sources (``sources.toml``): data, validated as a whole."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from generator.errors import SocdefError
from worker.contract.layout import CATEGORIES
from worker.contract.stix_common import TLP_LEVELS

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
BUNDLED = Path(__file__).resolve().parents[2] / "sources.toml"
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample"


class SourcesError(SocdefError, ValueError):
    """``sources.toml`` is missing or invalid; the message lists every problem."""


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    name: str
    url: str
    category: str
    site: str = ""
    tlp: str = "clear"  # the TLP 2.0 level of everything read from it


def _check(index: int, entry: dict) -> list[str]:
    problems = []
    where = f"source #{index + 1} ({entry.get('id', '?')})"
    for field in ("id", "name", "url", "category"):
        if not isinstance(entry.get(field), str) or not entry.get(field):
            problems.append(f"{where}: '{field}' is required")
    if isinstance(entry.get("id"), str) and not ID_PATTERN.match(entry["id"]):
        problems.append(f"{where}: id must match [a-z0-9-]+")
    if entry.get("category") not in CATEGORIES:
        problems.append(f"{where}: category must be one of {', '.join(CATEGORIES)}")
    if entry.get("tlp", "clear") not in TLP_LEVELS:
        problems.append(f"{where}: tlp must be one of {', '.join(TLP_LEVELS)}")
    if isinstance(entry.get("url"), str) and not entry["url"].startswith(("http://", "https://")):
        problems.append(f"{where}: url must be http(s)")
    return problems


def load_sources(path: str | Path | None = None) -> list[Source]:
    path = Path(path) if path else BUNDLED
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourcesError(f"sources file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SourcesError(f"{path}: {exc}") from None
    entries = data.get("source", [])
    problems = [p for i, e in enumerate(entries) for p in _check(i, e)]
    ids = [e.get("id") for e in entries]
    problems += [f"duplicate source id: {i}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    if problems:
        raise SourcesError(f"{path}: " + "; ".join(problems))
    return [
        Source(
            e["id"], e["name"], e["url"], e["category"], e.get("site", ""), e.get("tlp", "clear")
        )
        for e in entries
    ]
