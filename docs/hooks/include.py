"""MkDocs hook: a line `<!-- include: PATH -->` is replaced by the file PATH (relative to the repository root), less
its first-level title, so the pages show the committed benchmark tables (benchmarks/results/*.md) as they were
written, and stay in step with them. On GitHub, where no hook runs, the comment shows nothing.

Outside code, `][` becomes `]\\[`: the tables' prose writes matrices as R[i][j], which Markdown would otherwise read
as a reference link (and mkdocs-autorefs, under --strict, as a missing cross-reference)."""

import re
from pathlib import Path

INCLUDE = re.compile(r"^<!-- include: (\S+) -->$", re.M)
ROOT = Path(__file__).resolve().parents[2]
CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")


def _escape_references(line: str) -> str:
    """`][` escaped outside the line's code spans."""
    out, last = [], 0
    for span in CODE_SPAN.finditer(line):
        out += [line[last:span.start()].replace("][", "]\\["), span.group(0)]
        last = span.end()
    return "".join(out + [line[last:].replace("][", "]\\[")])


def included(path: str) -> str:
    lines = (ROOT / path).read_text().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    fenced, out = False, []
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        out.append(line if fenced else _escape_references(line))
    return "\n".join(out)


def on_page_markdown(markdown, page, config, files):
    return INCLUDE.sub(lambda match: included(match.group(1)), markdown)
