"""Subcommand ``label``: GFN2-xTB energies and forces (and stresses, ``--periodic``) for an extxyz file."""

from __future__ import annotations

import argparse

from ..cli_checks import (
    existing_file,
    finite_float,
    md_seed,
    non_negative_float,
    non_negative_int,
    platform_name,
    positive_float,
    positive_int,
)
from ..cli_common import add_executor_options, executor_from_args


def register(subparsers) -> None:
    label = subparsers.add_parser(
        "label", help="GFN2-xTB energies/forces (+ isolated-atom E0s) for every structure of an extxyz file",
        description="Label structures with GFN2-xTB (xtb-python; tblite with --periodic) for MACE training: writes "
                    "OUT with REF_energy (eV) and REF_forces (eV/A) (and REF_stress, eV/A^3, with --periodic), "
                    "OUT-stem.e0s.json, OUT-stem.isolated_atoms.extxyz and OUT-stem.skipped.json. SCF failures "
                    "are retried at higher electronic temperatures, then skipped and recorded. Resumable: rerun "
                    "the same command after an interruption.")
    label.add_argument("input", type=existing_file,
                       help="extended XYZ of molecules (Angstrom), e.g. reference-md frames; periodic "
                            "boxes (Lattice=... pbc=\"T T T\") with --periodic")
    label.add_argument("-o", "--out", required=True, help="output .extxyz")
    label.add_argument("--charge", type=int, default=None,
                       help="total charge for every structure (default: info 'total_charge', else 0)")
    label.add_argument("--multiplicity", type=positive_int, default=None,
                       help="spin multiplicity for every structure (default: info 'multiplicity', else 1)")
    label.add_argument("--electronic-temperature", type=positive_float, default=300.0, help="K (xtb default 300)")
    label.add_argument("--accuracy", type=positive_float, default=1.0, help="xtb numerical accuracy (default 1.0)")
    label.add_argument("--max-iterations", type=positive_int, default=250, help="SCC iterations per attempt")
    label.add_argument("--retry-temperatures", type=positive_float, nargs="*", default=[1000.0, 3000.0], metavar="K",
                       help="electronic temperatures tried after an SCF failure (default: 1000 3000)")
    label.add_argument("--periodic", action="store_true",
                       help="periodic structures (every frame needs a cell and pbc T T T): GFN2-xTB through "
                            "tblite, adds REF_stress (eV/A^3, Voigt xx yy zz yz xz xy, ASE/mace-torch sign: "
                            "negative under compression); E0s from tblite free atoms")
    label.add_argument("--work-dir", default=None, help="per-structure cache (default: OUT-dir/.OUT-stem.labelling)")
    label.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_executor_options(label)
    label.set_defaults(handler=_label)
    _register_liquid_dataset(subparsers)


def _label(args: argparse.Namespace) -> int:
    from .labeller import label_structures

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


def _register_liquid_dataset(subparsers) -> None:
    from ..cli_common import add_cache_option
    from ..properties.liquid_cli import add_composition_options
    from ..sampling.liquid_frames import LiquidFramesProtocol

    d = LiquidFramesProtocol()
    data = subparsers.add_parser(
        "liquid-dataset", help="labelled training/test data for a liquid MLFF: GAFF NPT frames + rigid-volume "
                               "scans of a small box, periodic GFN2-xTB with stress",
        description="Pack a small periodic box, run GAFF NPT, keep evenly spaced frames (split at random into "
                    "train, valid and test), add rigid-volume scans (box scaled, molecules moved rigidly with "
                    "their centres of mass) of a few training frames and of every test frame, and label all with "
                    "periodic GFN2-xTB (tblite): energy, forces and stress. Writes OUT/train.extxyz, "
                    "valid.extxyz, test_scan.extxyz (+ .e0s.json), topology.pdb, dataset.json and "
                    "density_coverage.png; then `physembed train --preset cpu-liquid --train OUT/train.extxyz "
                    "--valid OUT/valid.extxyz`. With --part (repeated) or --table1: one dataset of several "
                    "liquids at several temperatures, each part in OUT/parts/SYSTEM_TK/ and all concatenated "
                    "into OUT/train.extxyz etc. (info 'system', 'part', 'temperature_K'). Resumable: rerun the "
                    "same command.")
    add_composition_options(data, default_n_molecules=10)
    from .combined_dataset import TABLE1_DATASET_PARTS

    data.add_argument("--part", action="append", default=None, metavar="SYSTEM@K",
                      help="a liquid of the experimental table at a temperature, e.g. 'EC:EMC 3:7@313.15' "
                           "(repeat for several; SYSTEM alone: the table's first temperature; a temperature "
                           "without a table row takes the composition of the nearest one); --n-molecules and "
                           "--packing-density apply to every part")
    data.add_argument("--table1", action="store_true",
                      help=f"the Table 1 parts: {', '.join(TABLE1_DATASET_PARTS)} (with any --part added)")
    data.add_argument("-o", "--out", default=None, help="output directory (default runs/<liquid>_dataset)")
    data.add_argument("--temperature", type=positive_float, default=None,
                      help="K (default: the experiment's or 298.15)")
    data.add_argument("--pressure", type=finite_float, default=d.dynamics.pressure_bar, help="bar")
    data.add_argument("--npt-ps", type=positive_float, default=d.npt_ps, help="GAFF NPT length (default %(default)s)")
    data.add_argument("--equilibration-ps", type=non_negative_float, default=d.equilibration_ps)
    data.add_argument("--n-train", type=positive_int, default=d.n_train, help="NPT frames for training")
    data.add_argument("--n-valid", type=positive_int, default=d.n_validation, help="NPT frames for validation")
    data.add_argument("--n-test", type=positive_int, default=d.n_test, help="frames whose full scans are the test set")
    data.add_argument("--n-train-scanned", type=non_negative_int, default=d.n_train_scanned,
                      help="training frames whose scans are added to the training set")
    data.add_argument("--scan-factors", type=positive_float, nargs="+", default=list(d.scan_factors),
                      help="linear box scale factors (default %(default)s)")
    data.add_argument("--seed", type=md_seed, default=d.dynamics.seed)
    data.add_argument("--charge-method", choices=["bcc", "gasteiger"], default="bcc")
    data.add_argument("--platform", type=platform_name, default=None, help="OpenMM platform of the GAFF NPT")
    data.add_argument("--no-progress", action="store_true")
    add_cache_option(data)
    add_executor_options(data)
    data.set_defaults(handler=_liquid_dataset)


def _liquid_dataset(args: argparse.Namespace) -> int:
    if args.part or args.table1:
        return _combined_liquid_dataset(args)
    from pathlib import Path

    from ..properties.liquid_cli import composition_from_args, liquid_name, liquid_temperature
    from .liquid_dataset import make_liquid_dataset

    spec, experiment = composition_from_args(args)
    protocol = _frames_protocol(args, liquid_temperature(args, experiment))
    box = spec.pack(args.charge_method, args.cache_dir)
    out = Path(args.out or f"runs/{liquid_name(args, spec)}_dataset")
    print(f"{'+'.join(f'{n} {m.name}' for m, n in zip(box.molecules, box.counts))}: {box.n_atoms} atoms, "
          f"{box.box_edge_nm:.3f} nm box -> {out}")
    with executor_from_args(args, gpu=False) as executor:
        dataset = make_liquid_dataset(box, out, protocol, executor=executor, progress=not args.no_progress)
    sizes = ", ".join(f"{k} {v}" for k, v in dataset.sizes.items())
    print(f"labelled structures: {sizes} -> {dataset.out_dir}; density coverage -> {dataset.plot_path}")
    print(f"next: physembed train --preset cpu-liquid --train {dataset.train_path} --valid {dataset.valid_path} "
          f"-o {out}/model")
    return 0


def _frames_protocol(args: argparse.Namespace, temperature_K: float):
    from ..sampling.liquid_frames import LiquidFramesProtocol
    from ..simulation.dynamics import Dynamics

    dynamics = Dynamics(temperature_K=temperature_K, pressure_bar=args.pressure, seed=args.seed,
                        platform=args.platform)
    return LiquidFramesProtocol(
        dynamics, npt_ps=args.npt_ps, equilibration_ps=args.equilibration_ps, n_train=args.n_train,
        n_validation=args.n_valid, n_test=args.n_test, n_train_scanned=args.n_train_scanned,
        scan_factors=tuple(args.scan_factors))


def dataset_parts_from_text(texts, n_molecules: int, packing_density_g_cm3: float | None = None, seed: int = 1):
    """:class:`~.combined_dataset.LiquidDatasetPart` for each ``'SYSTEM@K'`` of the experimental table
    (e.g. :data:`~.combined_dataset.TABLE1_DATASET_PARTS`), ``n_molecules`` each, packed at the
    table's density unless ``packing_density_g_cm3`` is given."""
    from ..properties.experimental import parse_system_at_temperature
    from ..properties.liquid import LiquidSpec
    from .combined_dataset import LiquidDatasetPart

    parts = []
    for text in texts:
        row, temperature_K = parse_system_at_temperature(text, require_row=False)
        spec = LiquidSpec.from_experiment(row, n_molecules, seed=seed)
        if packing_density_g_cm3:
            spec = LiquidSpec(**{**spec.__dict__, "packing_density_g_cm3": packing_density_g_cm3})
        at_row = abs(row.temperature_K - temperature_K) <= 0.5
        parts.append(LiquidDatasetPart(row.system, temperature_K, spec,
                                       row.density_g_cm3 if at_row else None))
    return parts


def _combined_liquid_dataset(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import LabellingError
    from .combined_dataset import TABLE1_DATASET_PARTS, check_dataset_parts, make_combined_liquid_dataset

    if args.experiment or args.components or args.counts or args.mass_fractions or args.temperature is not None:
        raise LabellingError("--part/--table1 name every liquid and temperature; leave out --experiment, "
                             "components, --counts, --mass-fractions and --temperature")
    texts = [*(TABLE1_DATASET_PARTS if args.table1 else ()), *(args.part or ())]
    parts = dataset_parts_from_text(texts, args.n_molecules, args.packing_density)
    protocol = _frames_protocol(args, parts[0].temperature_K)
    boxes = check_dataset_parts(parts, protocol)
    out = Path(args.out or ("runs/table1_dataset" if args.table1 and not args.part else "runs/liquid_dataset"))
    for part in parts:
        box = boxes[part.name]
        print(f"{part.name}: {'+'.join(str(c) for c in box['counts'])} molecules of "
              f"{'+'.join(part.spec.components)}, {box['box_edge_nm']:.3f} nm box, {part.temperature_K:g} K")
    with executor_from_args(args, gpu=False) as executor:
        dataset = make_combined_liquid_dataset(parts, out, protocol, executor=executor,
                                               progress=not args.no_progress, charge_method=args.charge_method,
                                               cache_dir=args.cache_dir)
    for name, part in dataset.parts.items():
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in part.sizes.items()))
    sizes = ", ".join(f"{k} {v}" for k, v in dataset.sizes.items())
    print(f"labelled structures, all parts: {sizes} ({dataset.n_computed} computed now) -> {dataset.out_dir}; "
          f"density coverage -> {dataset.plot_path}")
    print(f"next: physembed train --preset cpu-liquid --train {dataset.train_path} --valid {dataset.valid_path} "
          f"-o {out}/model")
    print(f"Fig. 5 check, per part: physembed volume-scan --dataset {out}/parts/PART (PART: "
          f"{', '.join(dataset.parts)})")
    return 0
