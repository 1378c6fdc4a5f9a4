"""Subcommand ``md``: MLFF molecular dynamics with a MACE model file (TorchForce), resumable."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli_checks import existing_file, md_seed, non_negative_float, platform_name, positive_float, positive_int
from ..cli_common import add_cache_option, add_molecule_argument, add_precision_option, molecule_from_args


def register(subparsers) -> None:
    md = subparsers.add_parser(
        "md", help="MACE MD of a molecule, N independent copies of it, or a liquid box (resumable)",
        description="Langevin MD (LangevinMiddle) with a mace-torch model as an OpenMM TorchForce. Gas phase by "
                    "default; --replicas N runs N non-interacting copies in one Context; --box N packs N "
                    "molecules at --density in a periodic box (NVT). Energies and frames go to OUT/records; "
                    "rerun the same command to resume.")
    md.add_argument("model", type=existing_file, help="mace-torch model file (NAME.model from mace_run_train)")
    add_molecule_argument(md)
    md.add_argument("-o", "--out", default=None, help="output directory (default runs/<molecule>/mace_md)")
    md.add_argument("--replicas", type=positive_int, default=1, help="independent gas-phase copies in one Context")
    md.add_argument("--box", type=positive_int, default=None, metavar="N", help="periodic liquid of N molecules")
    md.add_argument("--density", type=positive_float, default=1.0, help="packing density of --box in g/cm3")
    md.add_argument("--steps", type=positive_int, default=10_000)
    md.add_argument("--timestep", type=positive_float, default=0.5, help="fs")
    md.add_argument("--temperature", type=positive_float, default=300.0, help="K")
    md.add_argument("--friction", type=non_negative_float, default=1.0, help="1/ps")
    md.add_argument("--interval", type=positive_int, default=100, help="steps between recorded frames")
    add_precision_option(md)
    md.add_argument("--seed", type=md_seed, default=2024)
    md.add_argument("--platform", type=platform_name, default=None,
                    help="OpenMM platform (default: CUDA if present, else CPU)")
    add_cache_option(md)
    md.set_defaults(handler=_md)


def _md(args: argparse.Namespace) -> int:
    from ..simulation.dynamics import Dynamics
    from .mace_md import run_mace_md

    molecule = molecule_from_args(args)
    out = Path(args.out or f"runs/{molecule.name}/mace_md")
    dynamics = Dynamics(temperature_K=args.temperature, timestep_fs=args.timestep, friction_per_ps=args.friction,
                        seed=args.seed, platform=args.platform)
    frames = run_mace_md(args.model, molecule, out, dynamics, replicas=args.replicas, box_molecules=args.box,
                         density_g_cm3=args.density, n_steps=args.steps, interval=args.interval, dtype=args.dtype,
                         cache_dir=args.cache_dir)
    n = len(frames.get("step", []))
    if n:
        print(f"{n} frames -> {out}/records/frames; last potential energy {frames['potential_energy_kj_mol'][-1]:.2f} kJ/mol")
    return 0
