"""ATT&CK technique names by id, for formats that name a technique as "<name> - <id>".

The table (``exports/data/attack-techniques.tsv``) is MITRE ATT&CK Enterprise v18.1, revoked
techniques left out. MISP's galaxy clusters are keyed by exactly that name, so a galaxy tag is
only written for ids the table knows.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

TABLE = Path(__file__).with_name("data") / "attack-techniques.tsv"


@cache
def technique_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            technique, name = line.split("\t")
            names[technique] = name
    return names


def technique_name(technique: str) -> str | None:
    return technique_names().get(technique)
