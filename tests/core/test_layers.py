"""The layers of `app/`: `core/` is the ground floor, and no modules import each other in a circle.

Every import counts, at the top of a module or inside a function: a late import still ties the
two modules together, it only hides the tie until the function runs.
"""

import ast
import graphlib
import importlib.util
from pathlib import Path

import app

APP = Path(app.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(APP.rglob("*.py"))}


def _imported(name: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The modules of `app` that one import statement in module `name` names."""
    if isinstance(node, ast.Import):
        targets = {alias.name for alias in node.names}
    else:
        base = node.module or ""
        if node.level:  # a relative import, from the package `name` is in
            package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
            base = importlib.util.resolve_name("." * node.level + base, package)
        # `from app.core import idempotency` imports a module; `from app.core.db import READING`
        # imports a name from one.
        targets = {
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
            for alias in node.names
        }
    return {target for target in targets if target in MODULES and target != name}


def _imports() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[name] = set().union(
            *(
                _imported(name, node)
                for node in ast.walk(tree)
                if isinstance(node, ast.Import | ast.ImportFrom)
            )
        )
    return graph


def _in_core(name: str) -> bool:
    return name == "app.core" or name.startswith("app.core.")


def test_the_walk_sees_imports_at_the_top_and_inside_functions():
    graph = _imports()
    assert "app.core.db" in graph["app.core.templating"]
    assert "app.backup" in graph["app.cli"]  # imported inside the `backup` command
    assert "app.core.idempotency" in graph["app.incidents.api"]  # `from app.core import ...`


def test_core_imports_nothing_from_a_domain():
    graph = _imports()
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if _in_core(name)
        for target in targets
        if not _in_core(target)
    )
    assert wrong == [], "core/ is the ground floor: " + "; ".join(wrong)


def test_no_modules_import_each_other_in_a_circle():
    try:
        tuple(graphlib.TopologicalSorter(_imports()).static_order())
    except graphlib.CycleError as exc:
        circle = reversed(exc.args[1])  # graphlib lists each module before its importer
        raise AssertionError("import circle: " + " imports ".join(circle)) from None
