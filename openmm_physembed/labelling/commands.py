"""Subcommand ``label``: GFN2-xTB energies and forces (and stresses, ``--periodic``) for an extxyz file."""

from __future__ import annotations

import argparse

from ..cli_common import add_executor_options, executor_from_args


def register(subparsers) -> None:
    label = subparsers.add_parser(
        "label", help="GFN2-xTB energies/forces (+ isolated-atom E0s) for every structure of an extxyz file",
        description="Label structures with GFN2-xTB (xtb-python; tblite with --periodic) for MACE training: writes "
                    "OUT with REF_energy (eV) and REF_forces (eV/A) (and REF_stress, eV/A^3, with --periodic), "
                    "OUT-stem.e0s.json, OUT-stem.isolated_atoms.extxyz and OUT-stem.skipped.json. SCF failures "
                    "are retried at higher electronic temperatures, then skipped and recorded. Resumable: rerun "
                    "the same command after an interruption.")
    label.add_argument("input", help="extended XYZ of molecules (Angstrom), e.g. reference-md frames; periodic "
                                     "boxes (Lattice=... pbc=\"T T T\") with --periodic")
    label.add_argument("-o", "--out", required=True, help="output .extxyz")
    label.add_argument("--charge", type=int, default=None,
                       help="total charge for every structure (default: info 'total_charge', else 0)")
    label.add_argument("--multiplicity", type=int, default=None,
                       help="spin multiplicity for every structure (default: info 'multiplicity', else 1)")
    label.add_argument("--electronic-temperature", type=float, default=300.0, help="K (xtb default 300)")
    label.add_argument("--accuracy", type=float, default=1.0, help="xtb numerical accuracy (default 1.0)")
    label.add_argument("--max-iterations", type=int, default=250, help="SCC iterations per attempt")
    label.add_argument("--retry-temperatures", type=float, nargs="*", default=[1000.0, 3000.0], metavar="K",
                       help="electronic temperatures tried after an SCF failure (default: 1000 3000)")
    label.add_argument("--periodic", action="store_true",
                       help="periodic structures (every frame needs a cell and pbc T T T): GFN2-xTB through "
                            "tblite, adds REF_stress (eV/A^3, Voigt xx yy zz yz xz xy, ASE/mace-torch sign: "
                            "negative under compression); E0s from tblite free atoms")
    label.add_argument("--work-dir", default=None, help="per-structure cache (default: OUT-dir/.OUT-stem.labelling)")
    label.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_executor_options(label)
    label.set_defaults(handler=_label)


def _label(args: argparse.Namespace) -> int:
    from .dataset import label_structures

    with executor_from_args(args, gpu=False) as executor:  # xTB: CPU only
        result = label_structures(
            args.input, args.out, charge=args.charge, multiplicity=args.multiplicity,
            electronic_temperature_K=args.electronic_temperature, accuracy=args.accuracy,
            max_iterations=args.max_iterations, retry_temperatures_K=tuple(args.retry_temperatures),
            executor=executor, work_dir=args.work_dir, progress=not args.no_progress, periodic=args.periodic,
        )
    print(f"{result.n_labelled}/{result.n_input} structures labelled -> {result.out_path} "
          f"({result.n_computed} computed now, the rest from the cache)")
    if result.retried:
        print(f"{len(result.retried)} converged only at a raised electronic temperature (info "
              "'xtb_electronic_temperature_K')")
    if result.skipped:
        print(f"{result.n_skipped} skipped (SCF did not converge) -> {result.skipped_path}")
    print(f"E0s (eV) -> {result.e0s_path}: " + ", ".join(f"Z={z}: {e:.4f}" for z, e in result.e0s_ev.items()))
    return 0
