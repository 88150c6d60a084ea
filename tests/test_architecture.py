"""The layers of the library, and a test that its imports follow them.

Each module belongs to a layer; a module imports from its own layer or from those below, never from one above,
not even inside a function (the import would only be deferred, the dependency is the same). No module imports
itself back through others (no circle). The README's and docs/architecture.md's drawing is this list."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lifelong"

# bottom to top
LAYERS = [
    ("foundation", ["_version", "errors", "checks", "catalog", "limits", "storage", "results", "metrics",
                    "transforms", "distillation", "loggers", "plotting", "grid", "distributed"]),
    ("data", ["data", "data.*", "inputs"]),
    ("scenarios", ["scenarios", "rotations", "few_shot", "benchmarks"]),
    ("models", ["models", "models.*", "hebbian", "hebbian.*"]),
    ("methods", ["memory", "buffers", "methods", "methods.*"]),
    ("training", ["training", "learner"]),
    ("engine", ["engine"]),
    ("experiment", ["experiment", "compression"]),
    ("reproductions", ["reproduce", "reproduce_steps", "reproduce_der"]),
    ("report", ["report"]),
    ("cli", ["cli", "cli.*", "__main__", ""]),  # "": the package itself (lifelong/__init__.py)
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        for member in members:
            if module == member or (member.endswith(".*") and module.startswith(member[:-1])):
                return index
    raise AssertionError(f"lifelong.{module} is in no layer: add it to LAYERS in tests/test_architecture.py "
                         "(and to docs/architecture.md)")


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The modules of the library that `from ... import ...` in `module` names (a package's submodules by name)."""
    if node.level:
        base = module.split(".") if module else []
        base = base if is_package else base[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    elif node.module and (node.module == "lifelong" or node.module.startswith("lifelong.")):
        target = node.module[len("lifelong."):] if node.module != "lifelong" else ""
    else:
        return []
    found = []
    for alias in node.names:
        sub = f"{target}.{alias.name}" if target else alias.name
        is_module = (PACKAGE / f"{sub.replace('.', '/')}.py").exists() or (PACKAGE / sub.replace(".", "/")).is_dir()
        found.append(sub if is_module else target)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the library's modules it imports, at the top or inside functions."""
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                imported.update(resolve(module, path.name == "__init__.py", node))
            elif isinstance(node, ast.Import):
                imported.update(a.name[len("lifelong."):] for a in node.names if a.name.startswith("lifelong."))
        imported.discard(module)
        graph[module] = imported
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_imports_follow_the_layers():
    def name(module):
        return f"lifelong.{module}" if module else "lifelong"

    upward = [f"{name(module)} ({LAYERS[layer_of(module)][0]}) imports {name(target)} ({LAYERS[layer_of(target)][0]})"
              for module, targets in import_graph().items() for target in sorted(targets)
              if layer_of(target) > layer_of(module)]
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_no_module_imports_itself_back():
    cycle = find_cycle(import_graph())
    assert cycle is None, "an import circle: " + " -> ".join(f"lifelong.{m}" for m in cycle)


def test_the_checks_find_what_they_guard():
    """A circle and an upward import in a made-up graph are found (the two tests above would pass on any graph
    if these helpers found nothing)."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("training") > layer_of("methods.lwf") > layer_of("scenarios") > layer_of("errors")
    tree = ast.parse("from ..training import x\nfrom . import base\nfrom lifelong.data import user")
    found = [resolve("methods.lwf", False, node) for node in tree.body]
    assert found == [["training"], ["methods.base"], ["data.user"]]
