"""The labelling stage imports one way: core <- backends <- labeller, read from the source with ast.

Parsing instead of importing keeps the test free of xtb/tblite/torch and catches imports inside
functions too (a lazy import closes a circle just the same, only later).
"""

import ast
from pathlib import Path

import numpy as np
import pytest

import openmm_physembed
from openmm_physembed.errors import LabellingError

PACKAGE = "openmm_physembed.labelling"
LABELLING_DIR = Path(openmm_physembed.__file__).parent / "labelling"
CORE = f"{PACKAGE}.gfn2"
LABELLER = f"{PACKAGE}.labeller"
BACKEND_MODULES = (f"{PACKAGE}.xtb_python_backend", f"{PACKAGE}.tblite_backend")


def module_name(path: Path, folder: Path, package: str) -> str:
    return package if path.stem == "__init__" else f"{package}.{path.stem}"


def imported_modules(path: Path, folder: Path, package: str) -> set[str]:
    """Submodules of ``package`` (a flat folder) that the file at ``path`` imports, anywhere in it."""
    local = {p.stem for p in folder.glob("*.py")}
    this_package = package.split(".")
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = this_package[:len(this_package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            # `from . import a` names submodules; `from .a import f` names attributes of a
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:  # the package itself is left out: every submodule's import runs it first
            if target.startswith(package + ".") and target[len(package) + 1:].split(".")[0] in local:
                found.add(f"{package}.{target[len(package) + 1:].split('.')[0]}")
    found.discard(module_name(path, folder, package))
    return found


def import_graph(folder: Path, package: str) -> dict[str, set[str]]:
    return {module_name(p, folder, package): imported_modules(p, folder, package) for p in sorted(folder.glob("*.py"))}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or ``None`` when the graph has none."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


@pytest.fixture(scope="module")
def graph():
    return import_graph(LABELLING_DIR, PACKAGE)


def test_the_checker_sees_a_circle_through_a_lazy_import(tmp_path):
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "a.py").write_text("from .b import f\n")
    (folder / "b.py").write_text("def f():\n    from . import c\n")
    (folder / "c.py").write_text("from pkg.a import g\nfrom ..errors import E\n")
    graph = import_graph(folder, "pkg")
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.a"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    (folder / "c.py").write_text("from ..errors import E\n")
    assert find_cycle(import_graph(folder, "pkg")) is None


def test_labelling_modules_import_in_no_circle(graph):
    assert {CORE, LABELLER, *BACKEND_MODULES} <= set(graph)
    assert find_cycle(graph) is None


def test_core_imports_no_labelling_module(graph):
    assert graph[CORE] == set()


@pytest.mark.parametrize("backend", BACKEND_MODULES)
def test_each_backend_imports_only_the_core(graph, backend):
    assert graph[backend] == {CORE}


def test_only_the_labeller_imports_the_backends(graph):
    users = {module for module, imports in graph.items() if imports & set(BACKEND_MODULES)}
    assert users == {LABELLER}


@pytest.mark.parametrize("module", [PACKAGE, CORE, *BACKEND_MODULES])
def test_docstring_names_the_labeller_as_the_way_in(module):
    path = LABELLING_DIR / ("__init__.py" if module == PACKAGE else f"{module.rsplit('.', 1)[1]}.py")
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert "way in" in docstring and ":mod:`.labeller`" in docstring


def test_backend_table_names_each_backend_module_once():
    from openmm_physembed.labelling import labeller, tblite_backend, xtb_python_backend

    assert labeller.BACKENDS == {"xtb-python": xtb_python_backend.single_point,
                                 "tblite": tblite_backend.tblite_single_point}
    assert labeller.XTBSettings().backend == "xtb-python"


def test_unknown_backend_fails_before_any_single_point():
    from openmm_physembed.labelling.labeller import compute_e0s

    with pytest.raises(LabellingError, match=r"unknown xTB backend 'dftb'; choose one of xtb-python, tblite"):
        compute_e0s(["H"], backend="dftb")


def test_xtb_python_backend_refuses_a_cell():
    from openmm_physembed.labelling.xtb_python_backend import single_point

    with pytest.raises(LabellingError, match="no periodic boundaries; use the tblite backend"):
        single_point([1, 1], np.zeros((2, 3)), cell_angstrom=np.eye(3) * 10.0)
