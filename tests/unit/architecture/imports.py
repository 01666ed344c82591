"""The import graph of ``services/``, read with ast (nothing is imported).

Every ``import`` and ``from ... import`` counts, at module level or inside a function (a
deferred import is still a dependency), except those under ``if TYPE_CHECKING:`` (types
only). ``importlib.import_module("literal")`` counts as an import of its literal.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = "services"


@dataclass(frozen=True, slots=True)
class Import:
    module: str  # the importing module, e.g. services.grader.cli
    target: str  # the imported module (or module.name), e.g. services.stack.config
    line: int

    @property
    def where(self) -> str:
        return f"{module_path(self.module)}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_path(module: str) -> str:
    base = ROOT.joinpath(*module.split("."))
    return str(
        (base / "__init__.py" if base.is_dir() else base.with_suffix(".py")).relative_to(ROOT)
    )


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / PACKAGE).rglob("*.py"))}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under ``node``, skipping ``if TYPE_CHECKING:`` bodies."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child):
            for orelse in child.orelse:
                yield orelse
                yield from _walk(orelse)
            continue
        yield child
        yield from _walk(child)


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, name] if name else base)


@cache
def imports_of(module: str) -> tuple[Import, ...]:
    path = modules()[module]
    return parse_imports(module, path.read_text(encoding="utf-8"), path.name == "__init__.py")


def parse_imports(module: str, text: str, is_package: bool = False) -> tuple[Import, ...]:
    """The imports in the source ``text`` of ``module``."""
    tree = ast.parse(text, module)
    found: list[Import] = []
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            found.extend(Import(module, alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                # ``from services.core import rubric`` imports the module services.core.rubric
                found.append(Import(module, full if full in modules() else base, node.lineno))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(Import(module, node.args[0].value, node.lineno))
    return tuple(found)


def environment_reads(text: str) -> list[int]:
    """Lines of ``text`` that read or change the process environment: ``os.environ``,
    ``os.environb``, ``os.getenv``, ``os.putenv``, ``os.unsetenv`` or those names
    imported from ``os``."""
    names = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
    lines = []
    for node in ast.walk(ast.parse(text)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in names
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ) or (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(alias.name in names for alias in node.names)
        ):
            lines.append(node.lineno)
    return sorted(lines)


def internal_target(target: str) -> str | None:
    """The services module ``target`` names (a module, or a name in one); None outside."""
    known = modules()
    name = target
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def graph() -> dict[str, set[str]]:
    """module -> the services modules it imports (a package's ``__init__`` included)."""
    out: dict[str, set[str]] = {}
    for module in modules():
        targets = {internal_target(i.target) for i in imports_of(module)}
        out[module] = {t for t in targets if t is not None and t != module}
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as one
    cycle through it, sorted, so a failure names modules a reader can follow."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def visit(start: str) -> None:
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [_one_cycle(sorted(c), edges) for c in sorted(components)]


def _one_cycle(members: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first)."""
    inside = set(members)
    start = members[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(edges[node] & inside):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child not in previous:
                    previous[child] = node
                    nxt.append(child)
        frontier = nxt
    return members
