"""The MD engine (simulation/) sits below every stage: it imports only chem/ and the utilities.

Read from the source with ast (nothing imported), so lazy imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "openmm_physembed"
#: What simulation/ may import from the package (besides itself).
SIMULATION_MAY_IMPORT = {"chem", "units", "errors", "jobs", "io", "workarounds", "torch_device"}


def package_imports(source: str, module: str) -> set[str]:
    """Absolute names of the ``openmm_physembed`` modules that ``source`` (module ``module``) imports."""
    package = module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            # "from . import x" / "from .. import x" name modules in the alias list.
            found |= {f"{name}.{alias.name}" for alias in node.names} if not node.module else {name}
    return {name for name in found if name == "openmm_physembed" or name.startswith("openmm_physembed.")}


def _layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_resolver_sees_relative_lazy_and_absolute_upward_imports():
    source = ("from ..potentials.mace_force import add_mace_force\n"
              "def f():\n    from ..properties import liquid\n"
              "import openmm_physembed.stability.protocol\n"
              "from .runner import ArrayRecorder\nfrom .. import cli\nimport numpy\n")
    names = package_imports(source, "openmm_physembed.simulation.engine")
    assert names == {"openmm_physembed.potentials.mace_force", "openmm_physembed.properties",
                     "openmm_physembed.stability.protocol", "openmm_physembed.simulation.runner",
                     "openmm_physembed.cli"}


@pytest.mark.parametrize("path", sorted((PACKAGE / "simulation").glob("*.py")), ids=lambda p: p.name)
def test_simulation_imports_only_chem_and_the_utilities(path):
    module = f"openmm_physembed.simulation.{path.stem}"
    upward = {name for name in package_imports(path.read_text(), module)
              if _layer(name) not in SIMULATION_MAY_IMPORT | {"simulation"}}
    assert not upward, f"{path.name} imports {sorted(upward)}; simulation/ may import only " \
                       f"{sorted(SIMULATION_MAY_IMPORT)} (hand it what it needs instead, e.g. a builder function)"


def test_cli_common_does_not_reach_into_the_stages():
    names = package_imports((PACKAGE / "cli_common.py").read_text(), "openmm_physembed.cli_common")
    assert {_layer(n) for n in names} <= {"executors", "chem", "errors", "cli_checks"}, names
