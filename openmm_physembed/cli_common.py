"""Options shared by several subcommands."""

from __future__ import annotations

import argparse

from .cli_checks import positive_float, positive_int


def add_executor_options(parser: argparse.ArgumentParser, workers_help: str | None = None) -> None:
    """``--workers``, ``--dask-scheduler``, ``--serial``; ``workers_help`` for a command whose default differs."""
    group = parser.add_argument_group("where independent jobs run")
    group.add_argument("--workers", type=positive_int, default=None,
                       help=workers_help or "local worker processes (default: one per GPU, each on its own GPU; "
                                            "without a GPU half the CPU cores, so that each OpenMM CPU worker has two)")
    group.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                       help="run jobs on a Dask cluster, e.g. tcp://host:8786")
    group.add_argument("--serial", action="store_true", help="run jobs one by one in this process")


def executor_from_args(args: argparse.Namespace, gpu: bool | None = None):
    """The Executor the options ask for; ``gpu=False`` for CPU-only jobs (see ``make_executor``)."""
    from .executors import make_executor

    return make_executor(dask_scheduler=args.dask_scheduler, max_workers=args.workers, serial=args.serial, gpu=gpu)


def given_options(args: argparse.Namespace, *dests: str, **fields: str) -> dict:
    """The options the user gave, as overrides: ``{dest: value}`` for ``dests`` and ``{field: args.<dest>}``
    for ``fields``, leaving out every option that is None (not given, so the preset's value stands).

    >>> given_options(argparse.Namespace(n_starts=4, test_ps=None, temperature=600.0), "n_starts", "test_ps",
    ...               temperature_K="temperature")
    {'n_starts': 4, 'temperature_K': 600.0}
    """
    wanted = {**{dest: dest for dest in dests}, **fields}
    return {name: getattr(args, dest) for name, dest in wanted.items() if getattr(args, dest) is not None}


def add_molecule_argument(parser: argparse.ArgumentParser, name: str = "molecule") -> None:
    parser.add_argument(name, help="library name (paracetamol, novec7000, ac-ala-nhme, ac-ala3-nhme, ec, emc, dmc, ea, dec, pc), "
                                   "a SMILES string, or an .sdf/.mol/.mol2/.pdb file")
    parser.add_argument("--charge", type=int, default=None, help="net charge in e (required for ions)")


def molecule_from_args(args: argparse.Namespace, name: str = "molecule"):
    from .chem.molecule import Molecule

    return Molecule.from_any(getattr(args, name), charge=args.charge)


def add_cache_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", default=None,
                        help="GAFF parameter cache (default $PHYSEMBED_CACHE or ~/.cache/openmm_physembed)")


def add_composition_options(parser: argparse.ArgumentParser, default_n_molecules: int) -> None:
    """Which liquid: components with counts or mass fractions, or a row of the experimental table."""
    parser.add_argument("components", nargs="*", help="component molecules (names, SMILES, files); "
                                                       "omit when --experiment names a known liquid")
    parser.add_argument("--experiment", help="a liquid from the shipped experimental table, e.g. EMC or "
                                             "'EC:EMC 3:7' (sets components, composition and target)")
    parser.add_argument("--counts", type=positive_int, nargs="+", help="molecules per component")
    parser.add_argument("--mass-fractions", type=positive_float, nargs="+", help="mass ratio, e.g. 3 7")
    parser.add_argument("--n-molecules", type=positive_int, default=default_n_molecules,
                        help=f"total molecules (default {default_n_molecules})")
    parser.add_argument("--packing-density", type=positive_float, default=None,
                        help="g/cm3 for packmol (default: experiment or 1.0)")


def composition_from_args(args: argparse.Namespace):
    """``(LiquidSpec, ExperimentalLiquid or None)`` from :func:`add_composition_options`' options
    (``args.temperature``, when present, picks the experimental row)."""
    from .errors import PropertyError
    from .properties.experimental import lookup
    from .properties.liquid import LiquidSpec

    if args.experiment:
        temperature = getattr(args, "temperature", None)
        experiment = lookup(args.experiment, temperature if temperature is not None else 298.15)
        spec = LiquidSpec.from_experiment(experiment, args.n_molecules)
        if args.packing_density:
            spec = LiquidSpec(**{**spec.__dict__, "packing_density_g_cm3": args.packing_density})
        return spec, experiment
    if not args.components:
        raise PropertyError("give component molecules or --experiment SYSTEM")
    counts = tuple(args.counts) if args.counts else None
    if counts is None and not args.mass_fractions:
        counts = (args.n_molecules,) if len(args.components) == 1 else None
    spec = LiquidSpec(tuple(args.components), counts, tuple(args.mass_fractions) if args.mass_fractions else None,
                      args.n_molecules, args.packing_density or 1.0)
    return spec, None


def liquid_temperature(args: argparse.Namespace, experiment) -> float:
    """``--temperature``, else the experimental row's, else 298.15 K."""
    if args.temperature is not None:
        return args.temperature
    return experiment.temperature_K if experiment else 298.15


def liquid_name(args: argparse.Namespace, spec) -> str:
    """A file-name-safe name of the liquid (``EC-EMC_3-7``, ``emc``)."""
    return (args.experiment or "-".join(spec.components)).replace(" ", "_").replace(":", "-")
