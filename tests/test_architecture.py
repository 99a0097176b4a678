"""Issue 12: layers only point down. Parses the code with `ast` (nothing is imported) and checks:
schemas/ (the floor) imports no stage; a stage package (dataset_builder minus its cli, quality, trl_training)
imports only schemas/ and itself; nothing imports the CLI (dataset_builder/cli, the roof); project modules
form no import cycle; and no project module is imported inside a function."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dataset_builder", "quality", "trl_training", "schemas")
CLI = "dataset_builder.cli"


@dataclass(frozen=True)
class Import:
    importer: str  # module name
    imported: str  # the project module it names
    line: int
    in_function: bool


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO_ROOT / pkg).rglob("*.py"))}


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: set[str]) -> list[str]:
    """The project modules an import statement names (`from pkg import mod` names pkg.mod)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = _absolute(node, module, is_package)
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    found = []
    for name in names:
        if name.split(".")[0] not in PACKAGES:
            continue
        while name not in modules and "." in name:  # `import a.b.c` of a name inside a module
            name = name.rsplit(".", 1)[0]
        found.append(name)
    return found


def _imports() -> list[Import]:
    modules = _modules()
    found: list[Import] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        in_function: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                in_function |= {id(n) for n in ast.walk(node) if n is not node}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(node, module, path.name == "__init__.py", set(modules)):
                    if target != module:
                        found.append(Import(module, target, node.lineno, id(node) in in_function))
    return found


def _layer(module: str) -> str:
    if module == CLI or module.startswith(CLI + "."):
        return "cli"
    return module.split(".")[0]


def _show(imports: list[Import]) -> str:
    return "\n".join(f"{i.importer}:{i.line} imports {i.imported}" for i in imports)


def test_schemas_is_the_floor() -> None:
    up = [i for i in _imports() if _layer(i.importer) == "schemas" and _layer(i.imported) != "schemas"]
    assert not up, "schemas/ must import no stage:\n" + _show(up)


def test_no_stage_package_imports_another() -> None:
    stages = {"dataset_builder", "quality", "trl_training"}
    across = [i for i in _imports() if _layer(i.importer) in stages
              and _layer(i.imported) not in {"schemas", _layer(i.importer)}]
    assert not across, "a stage package imports only schemas/ and itself:\n" + _show(across)


def test_nothing_imports_the_cli() -> None:
    up = [i for i in _imports() if _layer(i.importer) != "cli" and _layer(i.imported) == "cli"]
    assert not up, "the CLI is the roof; nothing imports it:\n" + _show(up)


def test_no_project_imports_inside_functions() -> None:
    inside = [i for i in _imports() if i.in_function]
    assert not inside, "import project modules at module level, not inside functions:\n" + _show(inside)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(edges.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    edges: dict[str, set[str]] = {}
    for i in _imports():
        edges.setdefault(i.importer, set()).add(i.imported)
    cycles = _cycles(edges)
    assert not cycles, "project modules import each other in a cycle:\n" + "\n".join(" <-> ".join(c) for c in cycles)
