"""Every command, including those other parts register, has help that opens with an example."""

from __future__ import annotations

import click
import pytest

from traceduck.cli import main

from ._helpers import run


def _walk(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths += _walk(command, (*prefix, name))
    return paths


COMMANDS = _walk(main)


def test_the_documented_commands_are_registered() -> None:
    names = {" ".join(p) for p in COMMANDS}
    for expected in (
        "search", "show", "sql", "stats", "export", "import", "demo", "tag add", "tag update",
        "tag rm", "tag history", "metadata log", "metadata history", "delete", "prune",
    ):  # fmt: skip
        assert expected in names


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "traceduck")
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_opens_with_an_example(path: tuple[str, ...], flag: str) -> None:
    result = run(*path, flag)
    assert result.code == 0, result.err
    assert "Traceback" not in result.out + result.err
    text = result.out
    assert "Example:" in text, f"`traceduck {' '.join(path)} --help` shows no example"
    example = text.index("Example:")
    # The example comes before the option list, and names the command it documents.
    assert "Options:" not in text or example < text.index("Options:")
    first = text[example:].splitlines()[1].strip()
    assert first.startswith(" ".join(("traceduck", *path))), first
