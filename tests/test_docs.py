"""The documentation as written: every Python block of the README and of docs/ runs (each in a fresh folder and
namespace), every method, scenario and reproduction that lifelong offers has its section, and the site's nav holds
every page.

A ```python block is run unless the line before it is `<!-- no-run: REASON -->` (for a block that needs an account
or a service; use it sparingly). Blocks must be fast: tiny data, a few epochs."""

import os
import re
from pathlib import Path

import pytest

from lifelong import catalog

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
NO_RUN = re.compile(r"^<!-- no-run: \S.*-->$")


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def python_blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, code, why not run) of each ```python block of `path`, in order."""
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start, before = i + 1, next((line for line in reversed(lines[:i]) if line.strip()), "")
            end = next(j for j in range(start, len(lines)) if lines[j].strip() == "```")
            code = "\n".join(lines[start:end]) + "\n"
            skipped = before.strip() if NO_RUN.match(before.strip()) else None
            blocks.append((start, code, skipped))
            i = end
        i += 1
    return blocks


def _collect():
    """Blocks to run, each once (the README's may repeat a page's), and the ones marked not to run."""
    run, skipped, seen = [], [], set()
    for page in PAGES:
        for line, code, why in python_blocks(page):
            where = f"{_relative(page)}:{line}"
            if why:
                skipped.append((where, why))
            elif code not in seen:
                seen.add(code)
                run.append(pytest.param(code, where, id=where))
    return run, skipped


BLOCKS, SKIPPED = _collect()


def headings(path: Path) -> list[tuple[int, str, int]]:
    """(level, text, line index) of every Markdown heading of `path` outside code blocks."""
    found, fenced = [], False
    for i, line in enumerate(path.read_text().splitlines()):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^(#{1,6}) (.*)$", line)):
            found.append((len(match.group(1)), match.group(2), i))
    return found


def sections(paths) -> dict[str, str]:
    """For each name in backticks in a heading of `paths`: the text of its section (up to the next heading of the
    same or a higher level)."""
    found = {}
    for path in paths:
        lines = path.read_text().splitlines()
        marks = headings(path)
        for k, (level, text, start) in enumerate(marks):
            end = next((i for lvl, _, i in marks[k + 1:] if lvl <= level), len(lines))
            for name in re.findall(r"`([^`]+)`", text):
                found[name] = "\n".join(lines[start:end])
    return found


# ---------------------------------------------------------------------------------------------- the code blocks
def test_the_pages_have_python_examples():
    assert len(BLOCKS) >= 10
    assert python_blocks(README), "the README shows a Python example"


@pytest.mark.parametrize("code, where", BLOCKS)
def test_a_python_block_runs_as_written(code, where, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIFELONG_DATA", str(tmp_path / "no-data"))  # the examples need no data directory
    exec(compile(code, where, "exec"), {"__name__": "__docs__"})
    assert capsys.readouterr().out.strip(), f"{where}: an example prints what it shows"
    assert os.getcwd() == str(tmp_path)


def test_blocks_not_run_say_why():
    for where, why in SKIPPED:
        assert NO_RUN.match(why), where
    assert len(SKIPPED) <= len(BLOCKS) // 5, f"most examples must run: {SKIPPED}"


# ---------------------------------------------------------------------------------------------- the sections
def test_every_method_has_its_section_with_its_options():
    from lifelong.methods import METHODS, method_options

    documented = sections(sorted((DOCS / "methods").glob("*.md")))
    missing = [name for name in catalog.METHODS if name not in documented]
    assert not missing, f"methods without a section (a heading naming `name`) in docs/methods/: {missing}"
    for name in catalog.METHODS:
        absent = [option for option in method_options(METHODS[name]) if f"`{option}`" not in documented[name]]
        assert not absent, f"docs/methods/: the section of `{name}` does not name its options {absent}"


def test_every_scenario_has_its_section():
    documented = sections([DOCS / "scenarios.md"])
    missing = [name for name in catalog.SCENARIOS if name not in documented]
    assert not missing, f"scenarios without a section (a heading naming `name`) in docs/scenarios.md: {missing}"


def test_every_reproduction_has_its_section():
    documented = sections(sorted((DOCS / "reproductions").glob("*.md")))
    missing = [name for name in catalog.REPRODUCTIONS if name not in documented]
    assert not missing, f"reproductions without a section in docs/reproductions/: {missing}"


def test_the_readme_names_every_method():
    text = README.read_text()
    missing = [name for name in catalog.METHODS if f"`{name}`" not in text]
    assert not missing, f"the README's methods at a glance lack {missing}"


# ---------------------------------------------------------------------------------------------- the front door
def test_the_readme_begins_with_the_two_set_up_commands():
    lines = README.read_text().splitlines()
    assert lines[0].startswith("# ") and lines[2] == "```" and lines[5] == "```", lines[:6]
    assert [line.split()[:2] for line in lines[3:5]] == [["make", "demo"], ["make", "test"]]


def test_the_readmes_links_lead_somewhere():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text()):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [str(page.relative_to(DOCS)) for page in DOCS.rglob("*.md")]
    missing = [page for page in pages if not re.search(rf"(?m)^\s*- (?:[^:\n]+: )?{re.escape(page)}$", nav)]
    assert not missing, f"pages missing from mkdocs.yml's nav: {missing}"
