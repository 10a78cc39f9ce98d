"""The import graph of mpupload: packages in layers, each importing only the layers below it, and no circle
between modules. Imports inside functions and under TYPE_CHECKING count too: a lazy import is still a
dependency, it is only paid for later. The graph is read from the source (ast), so nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "mpupload"

# Lowest first. A package may import its own modules and any package of a lower layer; packages on one
# layer may not import each other. The top-level modules (`__init__`, `__main__`, `localserver`) stand outside.
LAYERS: list[set[str]] = [
    {"core"},
    {"settings"},
    {"source", "state", "pace"},
    {"observe"},
    {"s3"},
    {"worker"},
    {"run"},
    {"ui", "cluster"},
    {"commands"},
    {"cli"},
]
OUTSIDE = {"__init__", "__main__", "localserver"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every mpupload module `name` imports, at any depth of the file."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                here = here[: len(here) - (node.level - 1)]
                base = ".".join(here + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target != "mpupload":
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(package: str) -> int:
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"package {package!r} is in no layer: add it to LAYERS")


def test_every_package_has_a_layer():
    for module in graph():
        package = _package(module)
        if package not in OUTSIDE:
            _layer(package)


def test_no_import_against_the_layers():
    wrong = []
    for module, deps in sorted(graph().items()):
        src = _package(module)
        if src in OUTSIDE:
            continue
        for dep in sorted(deps):
            dst = _package(dep)
            if dst == src or dst in OUTSIDE - {"__init__"}:
                continue
            if dst == "__init__" or _layer(dst) >= _layer(src):
                wrong.append(f"{module} -> {dep}")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_circle():
    g = graph()
    circles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(g.get(node, ())):
            if state.get(dep) == "open":
                circles.append(" -> ".join(stack[stack.index(dep):] + [node, dep]) if dep in stack else f"{node} -> {dep}")
            elif dep not in state:
                visit(dep, stack + [node])
        state[node] = "done"

    for module in sorted(g):
        if module not in state:
            visit(module, [])
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_checker_sees_function_level_imports(tmp_path):
    """The rule would be hollow if an import inside a function slipped past it."""
    modules = {"mpupload.core.a": tmp_path / "a.py", "mpupload.cli.main": tmp_path / "m.py"}
    (tmp_path / "a.py").write_text("def f():\n    from mpupload.cli import main\n    from ..cli.main import x\n")
    assert _imports("mpupload.core.a", tmp_path / "a.py", modules) == {"mpupload.cli.main"}
