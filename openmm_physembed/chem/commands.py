"""Subcommands of the chem stage: ``gaff`` and ``box``."""

from __future__ import annotations

import argparse

from ..cli_checks import md_seed, positive_float, positive_int
from ..cli_common import add_cache_option, add_molecule_argument, molecule_from_args


def register(subparsers) -> None:
    gaff = subparsers.add_parser("gaff", help="GAFF atom types and bond parameters of a molecule",
                                 description="Type a molecule with antechamber (GAFF), assign charges, "
                                             "and print per-atom types and per-bond k/r0.")
    add_molecule_argument(gaff)
    gaff.add_argument("--force-field", choices=["gaff", "gaff2"], default="gaff")
    gaff.add_argument("--charge-method", choices=["bcc", "gasteiger"], default="bcc")
    add_cache_option(gaff)
    gaff.set_defaults(handler=_gaff)

    box = subparsers.add_parser("box", help="pack a liquid box (pure or mixture) with packmol",
                                description="Pack a cubic liquid box and write box.pdb. Composition by "
                                            "--counts or by --mass-fractions with --n-molecules.")
    box.add_argument("molecules", nargs="+", help="components (names, SMILES or files)")
    box.add_argument("--counts", type=positive_int, nargs="+", help="molecules of each component")
    box.add_argument("--mass-fractions", type=positive_float, nargs="+", help="mass ratio, e.g. 3 7 for EC:EMC 3:7")
    box.add_argument("--n-molecules", type=positive_int, help="total molecules when giving mass fractions")
    size = box.add_mutually_exclusive_group(required=True)
    size.add_argument("--density", type=positive_float, help="target density in g/cm3")
    size.add_argument("--box-edge", type=positive_float, help="cubic box edge in nm")
    box.add_argument("--seed", type=md_seed, default=1, help="packmol seed")
    box.add_argument("--charge-method", choices=["bcc", "gasteiger"], default="bcc")
    box.add_argument("-o", "--output", default="box.pdb")
    add_cache_option(box)
    box.set_defaults(handler=_box)


def _gaff(args: argparse.Namespace) -> int:
    from .gaff import parameterize

    molecule = molecule_from_args(args)
    params = parameterize(molecule, args.force_field, args.charge_method, args.cache_dir)
    print(f"{molecule.name}  {molecule.formula}  {molecule.smiles}  ({params.force_field}, {params.charge_method})")
    print(f"files: {params.directory}")
    print(f"atom types: {' '.join(sorted(set(params.atom_types)))}")
    print(f"{'bond':>10} {'type':>8} {'k (kcal/mol/A2)':>16} {'r0 (A)':>8}")
    for bond in params.bonds:
        print(f"{bond.atom1:>4}-{bond.atom2:<5} {bond.bond_type:>8} {bond.k_amber:16.1f} {bond.r0 * 10:8.4f}")
    return 0


def _box(args: argparse.Namespace) -> int:
    from .box import build_box
    from .molecule import Molecule

    molecules = [Molecule.from_any(spec) for spec in args.molecules]
    box = build_box(molecules, counts=args.counts, mass_fractions=args.mass_fractions,
                    n_molecules=args.n_molecules, density_g_cm3=args.density, box_edge_nm=args.box_edge,
                    seed=args.seed, charge_method=args.charge_method, cache_dir=args.cache_dir)
    box.write_pdb(args.output)
    fractions = ", ".join(f"{m.name} {f:.3f}" for m, f in zip(box.molecules, box.mass_fractions))
    print(f"{args.output}: {box.n_molecules} molecules, {box.n_atoms} atoms, edge {box.box_edge_nm:.3f} nm, "
          f"{box.density_g_cm3:.3f} g/cm3; mass fractions {fractions}")
    return 0
