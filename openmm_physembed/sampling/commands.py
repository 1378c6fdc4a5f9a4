"""Subcommands ``reference-md`` (GAFF gas-phase reference MD and random frames) and ``augment``
(self-adaptive bond-length sampling of those frames)."""

from __future__ import annotations

import argparse

from ..cli_checks import (
    existing_file,
    md_seed,
    non_negative_float,
    non_negative_int,
    platform_name,
    positive_float,
    positive_int,
    probability,
    random_seed,
)
from ..cli_common import add_cache_option, add_molecule_argument, molecule_from_args


def register(subparsers) -> None:
    ref = subparsers.add_parser("reference-md", help="GAFF gas-phase MD of one molecule; keep random frames",
                                description="Run GAFF MD of a single molecule in OpenMM (defaults: 300 K, "
                                            "1 fs, 1 ns, frame every 100 steps, 50 random frames). Resumable.")
    add_molecule_argument(ref)
    ref.add_argument("-o", "--out", default=None, help="output directory (default runs/<molecule>/reference)")
    ref.add_argument("--temperature", type=positive_float, default=300.0, help="K")
    ref.add_argument("--timestep", type=positive_float, default=1.0, help="fs")
    ref.add_argument("--steps", type=positive_int, default=1_000_000)
    ref.add_argument("--frame-interval", type=positive_int, default=100, help="steps between stored frames")
    ref.add_argument("--n-frames", type=positive_int, default=50, help="random frames kept for training")
    ref.add_argument("--seed", type=md_seed, default=2024)
    ref.add_argument("--charge-method", choices=["bcc", "gasteiger"], default="bcc")
    ref.add_argument("--platform", type=platform_name, default=None, help="OpenMM platform (default: automatic)")
    add_cache_option(ref)
    ref.set_defaults(handler=_reference_md)
    _register_augment(subparsers)


def _reference_md(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..simulation.dynamics import Dynamics
    from .reference_md import GasPhaseMDProtocol, run_gas_phase_md

    molecule = molecule_from_args(args)
    dynamics = Dynamics(temperature_K=args.temperature, timestep_fs=args.timestep, seed=args.seed,
                        platform=args.platform)
    protocol = GasPhaseMDProtocol(dynamics, n_steps=args.steps, frame_interval=args.frame_interval,
                                  n_frames=args.n_frames, charge_method=args.charge_method)
    out = Path(args.out or f"runs/{molecule.name}/reference")
    result = run_gas_phase_md(molecule, out, protocol, cache_dir=args.cache_dir)
    print(f"{len(result.selected)} frames -> {result.frames_path}; full trajectory -> {result.trajectory_path}")
    return 0


def _register_augment(subparsers) -> None:
    from .bond_parameters import BondSamplingParameters

    d = BondSamplingParameters()  # the published defaults live in one place
    aug = subparsers.add_parser(
        "augment", help="self-adaptive bond-length sampling of reference frames -> train/valid extxyz",
        description="Keep N_val reference frames for validation and compress or stretch one bond in each of the "
                    "others, with ranges and probabilities from GAFF force constants (compression [0.95 r_min, "
                    "r_min], stretch [r_max, 0.25 A k_ref/k_eff + r_mean], p ~ 1/k_eff, 1:4, terminal k x 0.8, "
                    "terminal-group rotation 15-30 deg with p 0.8, geometry check r_eq + 0.25 A). Writes "
                    "train.extxyz, valid.extxyz, records.json/.csv, ranges.json and a PNG of the bond-length "
                    "distributions. Deterministic for a seed; rerunning a finished run does nothing.")
    add_molecule_argument(aug)
    aug.add_argument("--frames", required=True, type=existing_file,
                     help="reference frames extxyz (e.g. OUT/frames.extxyz of reference-md)")
    aug.add_argument("-o", "--out", default=None, help="output directory (default runs/<molecule>/augmented)")
    aug.add_argument("--seed", type=random_seed, default=0)
    aug.add_argument("--n-validation", type=non_negative_int, default=d.n_validation,
                     help="frames kept unmodified for validation")
    aug.add_argument("--bonds-per-structure", type=positive_int, default=d.bonds_per_structure)
    aug.add_argument("--s-compression", type=positive_float, default=d.s_compression,
                     help="compression segment starts at s*r_min (default %(default)s)")
    aug.add_argument("--s-stretch", type=non_negative_float, default=d.s_stretch_angstrom,
                     help="stretch scale in Angstrom (default %(default)s)")
    aug.add_argument("--reference-bond", default=d.reference_bond_type,
                     help="bond type whose k is k_ref (default %(default)s)")
    aug.add_argument("--terminal-k-factor", type=positive_float, default=d.terminal_k_factor,
                     help="default %(default)s")
    aug.add_argument("--stretch-weight", type=non_negative_float, default=d.stretch_weight / d.compression_weight,
                     help="stretch : compression = this : 1 (default %(default)s)")
    aug.add_argument("--rotation-probability", type=probability, default=d.rotation_probability,
                     help="default %(default)s")
    aug.add_argument("--rotation-degrees", type=non_negative_float, nargs=2, default=d.rotation_degrees,
                     metavar=("MIN", "MAX"),
                     help="terminal-group rotation range (default %(default)s)")
    aug.add_argument("--clash-margin", type=non_negative_float, default=d.clash_margin_angstrom,
                     help="geometry check margin in Angstrom (default %(default)s)")
    aug.add_argument("--max-attempts", type=positive_int, default=d.max_attempts,
                     help="draws per structure before giving up (default %(default)s)")
    aug.add_argument("--random-draw", action="store_true",
                     help="the paper's draw alone: no structure reserved per bond type, so rare stiff types may "
                          "stay unstretched (reported); default: every bond type stretched at least once")
    aug.add_argument("--angles-per-structure", type=non_negative_int, default=0,
                     help="bonded-angle bends per structure at --bend-temperature (default 0: bonds only)")
    aug.add_argument("--bend-temperature", type=positive_float, default=800.0,
                     help="K; bend widths are 3 thermal widths sqrt(kB T / k) (default %(default)s)")
    aug.add_argument("--typing", default="gaff", help="bond typing source (gaff, gaff2)")
    aug.add_argument("--charge-method", choices=["bcc", "gasteiger"], default="bcc",
                     help="selects the cached GAFF parameterisation (types do not depend on charges)")
    aug.add_argument("--overwrite", action="store_true", help="replace a finished run made with other settings")
    add_cache_option(aug)
    aug.set_defaults(handler=_augment)


def _augment(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .angle_sampling import AngleSamplingParameters
    from .augment import run_augmentation
    from .bond_parameters import BondSamplingParameters

    parameters = BondSamplingParameters(
        s_compression=args.s_compression, s_stretch_angstrom=args.s_stretch, reference_bond_type=args.reference_bond,
        terminal_k_factor=args.terminal_k_factor, compression_weight=1.0, stretch_weight=args.stretch_weight,
        rotation_probability=args.rotation_probability, rotation_degrees=tuple(args.rotation_degrees),
        clash_margin_angstrom=args.clash_margin, max_attempts=args.max_attempts, n_validation=args.n_validation,
        bonds_per_structure=args.bonds_per_structure, cover_every_type=not args.random_draw,
    )
    angles = AngleSamplingParameters(angles_per_structure=args.angles_per_structure,
                                     temperature_K=args.bend_temperature)
    molecule = molecule_from_args(args)
    out = Path(args.out or f"runs/{molecule.name}/augmented")
    result = run_augmentation(molecule, args.frames, out, parameters, seed=args.seed, typing_source=args.typing,
                              charge_method=args.charge_method, cache_dir=args.cache_dir, overwrite=args.overwrite,
                              angle_parameters=angles)
    state = "already done" if result.reused else f"{result.rejected_attempts} rejected attempt(s)"
    print(f"{result.n_train} modified -> {result.train_path}; {result.n_valid} validation -> {result.valid_path} "
          f"({state}); plot -> {result.plot_path}")
    print(f"coverage: {result.coverage_note()}")
    return 0
