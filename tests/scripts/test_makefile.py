"""The Makefile's targets, ``make help`` and the README agree: none missing, none invented."""

from __future__ import annotations

import re
import subprocess

from .conftest import REPO_ROOT


def help_targets() -> list[str]:
    result = subprocess.run(
        ["make", "-s", "-C", str(REPO_ROOT), "help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(re.match(r"make [a-z][a-z-]* +\S", line) for line in lines), lines
    return [line.split()[1] for line in lines]


def makefile_targets() -> set[str]:
    """Every target a user can type: the rules whose name is a plain word (no paths)."""
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):(?!=)", text, re.M))


def readme_targets() -> set[str]:
    return set(re.findall(r"\bmake ([a-z][a-z-]*)", (REPO_ROOT / "README.md").read_text()))


def test_help_lists_every_target_once():
    listed = help_targets()
    assert len(listed) == len(set(listed))
    assert set(listed) == makefile_targets()
    phony = re.search(r"^\.PHONY:(.*?)(?<!\\)\n", (REPO_ROOT / "Makefile").read_text(), re.M | re.S)
    assert phony and set(phony.group(1).replace("\\", " ").split()) == set(listed)


def test_readme_and_help_name_the_same_targets():
    listed = set(help_targets())
    mentioned = readme_targets()
    assert mentioned - listed == set(), "the README names targets make does not have"
    assert listed - mentioned == set(), "make has targets the README does not mention"
