"""docs/cli.md documents every ``socdef`` command and option, and nothing that no longer exists.

The click command tree is the source of truth: each command (and group) has a section headed
``socdef <path>``; the section names each visible option and each argument of that command,
and every ``--option`` it names belongs to that command.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from generator.cli import cli

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
HEADING = re.compile(r"^#{2,3} (socdef(?: [a-z][a-z-]*)*)\s*$", re.M)
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def commands(cmd: click.Command = cli, path: str = "socdef") -> dict[str, click.Command]:
    found = {path: cmd}
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            found.update(commands(sub, f"{path} {name}"))
    return found


def sections(text: str) -> tuple[str, dict[str, str]]:
    """The text before the first command heading, and each command's section by its path."""
    marks = list(HEADING.finditer(text))
    body: dict[str, str] = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        assert m.group(1) not in body, f"two sections for {m.group(1)}"
        body[m.group(1)] = text[m.end() : end]
    return text[: marks[0].start()] if marks else text, body


def option_names(cmd: click.Command, *, visible_only: bool) -> set[str]:
    names: set[str] = set()
    for p in cmd.get_params(click.Context(cmd)):
        if isinstance(p, click.Option) and not (visible_only and p.hidden):
            names.update(o for o in (*p.opts, *p.secondary_opts) if o.startswith("--"))
    return names


TREE = commands()
INTRO, SECTIONS = sections(DOC.read_text(encoding="utf-8"))


def test_every_command_has_a_section():
    assert sorted(set(TREE) - set(SECTIONS)) == []


def test_no_section_for_a_command_that_does_not_exist():
    assert sorted(set(SECTIONS) - set(TREE)) == []


@pytest.mark.parametrize("path", sorted(TREE))
def test_section_names_every_option_and_argument(path):
    cmd, text = TREE[path], SECTIONS.get(path, "")
    named = set(OPTION.findall(text))
    missing = option_names(cmd, visible_only=True) - {"--help"} - named
    assert sorted(missing) == [], f"{path}: options missing from docs/cli.md"
    for p in cmd.params:
        if isinstance(p, click.Argument):
            assert p.make_metavar(click.Context(cmd)).split()[0].strip("[]") in text, (
                f"{path}: argument {p.name} missing from docs/cli.md"
            )


@pytest.mark.parametrize("path", sorted(TREE))
def test_section_names_no_option_the_command_lacks(path):
    cmd = TREE[path]
    unknown = set(OPTION.findall(SECTIONS.get(path, ""))) - option_names(cmd, visible_only=False)
    assert sorted(unknown) == [], f"{path}: docs/cli.md names options the command lacks"


def test_intro_names_only_existing_options():
    every = set().union(*(option_names(c, visible_only=False) for c in TREE.values()))
    assert sorted(set(OPTION.findall(INTRO)) - every) == []


def test_the_checks_can_fail():
    _, body = sections(
        "## socdef build\n`--now` `--init` `--fresh` `--store-generation` `--force`\n## socdef nope\n"
    )
    assert set(body) - set(TREE) == {"socdef nope"}
    assert option_names(TREE["socdef build"], visible_only=True) - {"--help"} - set(
        OPTION.findall(body["socdef build"])
    ) == {"--data-dir"}
