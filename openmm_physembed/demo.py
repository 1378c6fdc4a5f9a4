"""``physembed demo``: the main job on a small built-in default.

For now: GAFF typing + gas-phase reference MD of paracetamol. Later stages extend it to the
quick stability preset.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="run the main job on the small built-in default (paracetamol)",
                                 description="GAFF reference sampling of paracetamol (resumable).")
    demo.add_argument("-o", "--out", default="runs/demo", help="output directory")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .chem.gaff import parameterize
    from .chem.molecule import Molecule
    from .sampling.reference_md import GasPhaseMDProtocol, run_gas_phase_md

    out = Path(args.out)
    molecule = Molecule.from_name("paracetamol")
    params = parameterize(molecule)
    print(f"GAFF types of paracetamol: {' '.join(sorted(set(params.atom_types)))}")
    result = run_gas_phase_md(molecule, out / "paracetamol" / "reference", GasPhaseMDProtocol())
    print(f"reference frames: {result.frames_path}")
    return 0
