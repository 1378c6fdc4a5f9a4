"""Subcommand ``reference-md``: GAFF gas-phase reference MD and random frames."""

from __future__ import annotations

import argparse

from ..cli_common import add_cache_option, add_molecule_argument, molecule_from_args


def register(subparsers) -> None:
    ref = subparsers.add_parser("reference-md", help="GAFF gas-phase MD of one molecule; keep random frames",
                                description="Run GAFF MD of a single molecule in OpenMM (defaults: 300 K, "
                                            "1 fs, 1 ns, frame every 100 steps, 50 random frames). Resumable.")
    add_molecule_argument(ref)
    ref.add_argument("-o", "--out", default=None, help="output directory (default runs/<molecule>/reference)")
    ref.add_argument("--temperature", type=float, default=300.0, help="K")
    ref.add_argument("--timestep", type=float, default=1.0, help="fs")
    ref.add_argument("--steps", type=int, default=1_000_000)
    ref.add_argument("--frame-interval", type=int, default=100, help="steps between stored frames")
    ref.add_argument("--n-frames", type=int, default=50, help="random frames kept for training")
    ref.add_argument("--seed", type=int, default=2024)
    ref.add_argument("--charge-method", choices=["bcc", "gasteiger"], default="bcc")
    ref.add_argument("--platform", default=None, help="OpenMM platform (default: automatic)")
    add_cache_option(ref)
    ref.set_defaults(handler=_reference_md)


def _reference_md(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .reference_md import GasPhaseMDProtocol, run_gas_phase_md

    molecule = molecule_from_args(args)
    protocol = GasPhaseMDProtocol(temperature_K=args.temperature, timestep_fs=args.timestep, n_steps=args.steps,
                                  frame_interval=args.frame_interval, n_frames=args.n_frames, seed=args.seed,
                                  platform=args.platform, charge_method=args.charge_method)
    out = Path(args.out or f"runs/{molecule.name}/reference")
    result = run_gas_phase_md(molecule, out, protocol, cache_dir=args.cache_dir)
    print(f"{len(result.selected)} frames -> {result.frames_path}; full trajectory -> {result.trajectory_path}")
    return 0
