"""The project's modules import each other without a cycle, so each can be read and changed from the
bottom up. Every import statement counts, also one inside a function or under TYPE_CHECKING: a deferred
import hides a cycle from Python, not from the reader."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("boutique_suite", "provisioning", "steps")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(module: str, path: Path, known: set[str]) -> set[str]:
    """The project's modules that ``module`` names in its import statements."""
    found: set[str] = set()
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
            names = submodules + ([base] if len(submodules) < len(node.names) else [])
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                found.add(name)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    paths = {module_name(p, root): p for package in PACKAGES for p in (root / package).rglob("*.py")}
    return {module: imported(module, path, set(paths)) for module, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_the_projects_modules_import_each_other_without_a_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 100  # the packages were found
    found = cycles(graph)
    assert found == [], "\n".join(
        " <-> ".join(cycle) + ": " + "; ".join(f"{m} -> {sorted(set(graph[m]) & set(cycle))}" for m in cycle)
        for cycle in found
    )


def test_a_deferred_import_back_is_a_cycle(tmp_path: Path) -> None:
    package = tmp_path / "steps"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from steps import b\n")
    (package / "b.py").write_text("def f():\n    from steps.a import thing\n")
    (package / "c.py").write_text("from . import a\n")
    for name in ("boutique_suite", "provisioning"):
        (tmp_path / name).mkdir()
    graph = import_graph(tmp_path)
    assert graph["steps.c"] == {"steps.a"}
    assert cycles(graph) == [["steps.a", "steps.b"]]


def test_no_step_file_is_over_400_lines() -> None:
    """A step file is a table of bindings, one or two lines each: past 400 lines it holds two themes."""
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "steps").glob("*_steps.py")}
    assert len(sizes) > 5
    assert {name: n for name, n in sizes.items() if n > 400} == {}


STEP_DECORATORS = {"given", "when", "then"}


def long_bindings(source: str, limit: int = 3) -> dict[str, int]:
    """Step bindings whose body (without its docstring) spans more than ``limit`` lines."""
    found = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        names = {getattr(getattr(d, "func", d), "id", "") for d in node.decorator_list}
        if not names & STEP_DECORATORS:
            continue
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        lines = (body[-1].end_lineno or 0) - body[0].lineno + 1 if body else 0
        if lines > limit:
            found[node.name] = lines
    return found


def test_every_step_binding_is_at_most_three_lines() -> None:
    """A binding calls the library; a fourth line is logic that belongs in it."""
    found = {p.name: long_bindings(p.read_text()) for p in (ROOT / "steps").glob("*_steps.py")}
    assert sum(len(b) for b in found.values()) == 0, {name: b for name, b in found.items() if b}


def test_a_four_line_binding_is_named() -> None:
    source = (
        '@then("x")\ndef short():\n    """doc"""\n    a()\n    b()\n\n'
        '@when(parsers.parse("y"))\ndef long():\n    a()\n    b()\n    c()\n    d()\n\n'
        "def helper():\n    a()\n    b()\n    c()\n    d()\n"
    )
    assert long_bindings(source) == {"long": 4}


LIBRARY = ("boutique_suite", "provisioning", "loadtests")
SIZE_LIMIT = 400
SIZE_REASON = "over 400 lines because"  # what a longer module's docstring says, followed by its reason


def too_long(root: Path = ROOT) -> dict[str, int]:
    """The library's modules over 400 lines whose docstring does not say why."""
    found = {}
    for package in LIBRARY:
        for path in sorted((root / package).rglob("*.py")):
            text = path.read_text()
            lines = len(text.splitlines())
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if lines > SIZE_LIMIT and SIZE_REASON not in " ".join(docstring.lower().split()):
                found[str(path.relative_to(root))] = lines
    return found


def test_no_library_module_is_over_400_lines_without_a_reason_in_its_docstring() -> None:
    """Past 400 lines a module usually holds two concerns; one that truly holds one says so."""
    assert too_long() == {}


def test_a_long_module_passes_only_with_its_reason(tmp_path: Path) -> None:
    package = tmp_path / "boutique_suite"
    package.mkdir()
    body = "x = 1\n" * SIZE_LIMIT
    (package / "short.py").write_text('"""Short."""\n' + "x = 1\n" * (SIZE_LIMIT - 1))
    (package / "long.py").write_text('"""Long."""\n' + body)
    (package / "explained.py").write_text('"""Long. Over 400 lines\n   because it is one table."""\n' + body)
    for name in ("provisioning", "loadtests"):
        (tmp_path / name).mkdir()
    assert too_long(tmp_path) == {"boutique_suite/long.py": SIZE_LIMIT + 1}


def room(module: str) -> str | None:
    """The room of a library module (``boutique_suite.<room>.<module>``); None outside the library's rooms."""
    parts = module.split(".")
    return parts[1] if parts[0] == "boutique_suite" and len(parts) > 2 else None


def against_the_rooms(graph: dict[str, set[str]], rooms: tuple[str, ...]) -> list[str]:
    """Imports from a room to a later one (a room may import itself and the rooms before it)."""
    found = []
    for module, imports in sorted(graph.items()):
        if (here := room(module)) is None:
            continue
        for other in sorted(imports):
            there = room(other)
            if there is not None and rooms.index(there) > rooms.index(here):
                found.append(f"{module} ({here}) imports {other} ({there})")
    return found


def test_a_room_imports_only_the_rooms_before_it() -> None:
    from boutique_suite import ROOMS

    assert against_the_rooms(import_graph(), ROOMS) == []


def test_every_library_module_sits_in_a_room_that_says_what_it_may_import() -> None:
    from boutique_suite import ROOMS

    library = ROOT / "boutique_suite"
    loose = sorted(p.name for p in library.glob("*.py") if p.name != "__init__.py")
    assert loose == [], "modules outside a room"
    folders = sorted(p.name for p in library.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == sorted(ROOMS)
    for name in ROOMS:
        doc = ast.get_docstring(ast.parse((library / name / "__init__.py").read_text())) or ""
        says = "May import" in doc or "Imports no other room" in doc
        assert says, f"room {name}'s docstring does not say what it may import"


def test_an_import_into_a_later_room_is_named(tmp_path: Path) -> None:
    for folder in ("boutique_suite/run", "boutique_suite/actions", "provisioning", "steps"):
        (tmp_path / folder).mkdir(parents=True)
    library = tmp_path / "boutique_suite"
    (library / "run" / "waits.py").write_text("from boutique_suite.actions import faults\n")
    (library / "actions" / "faults.py").write_text("from boutique_suite.run import waits\n")
    graph = import_graph(tmp_path)
    assert against_the_rooms(graph, ("run", "actions")) == [
        "boutique_suite.run.waits (run) imports boutique_suite.actions.faults (actions)"
    ]


def machines_importing_services(graph: dict[str, set[str]]) -> list[str]:
    """The lab's machines come first, its services run on them: a machine module never imports a service."""
    return [
        f"{module} imports {other}"
        for module, imports in sorted(graph.items())
        if module.startswith("provisioning.lab.machines.")
        for other in sorted(imports)
        if other.startswith("provisioning.lab.services")
    ]


def test_the_labs_machines_never_import_its_services() -> None:
    graph = import_graph()
    assert any(m.startswith("provisioning.lab.machines.") for m in graph)
    assert any(m.startswith("provisioning.lab.services.") for m in graph)
    assert machines_importing_services(graph) == []


def test_a_machine_importing_a_service_is_named() -> None:
    graph = {
        "provisioning.lab.machines.nodes": {"provisioning.lab.services.registry", "provisioning.lab.layout"}
    }
    assert machines_importing_services(graph) == [
        "provisioning.lab.machines.nodes imports provisioning.lab.services.registry"
    ]
