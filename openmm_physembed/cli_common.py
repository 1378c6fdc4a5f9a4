"""Options shared by several subcommands."""

from __future__ import annotations

import argparse

from .cli_checks import positive_float, positive_int


def add_precision_option(parser) -> None:
    """``--precision`` (alias ``--dtype``): the MACE dtype, as in openmm-ml; default the model file's own.

    The names are those of potentials.mace_model.PRECISIONS (not imported: the CLI layer stays light).
    """
    parser.add_argument("--precision", "--dtype", dest="dtype", choices=["float32", "float64", "single", "double"],
                        default=None,
                        help="MACE precision, single = float32, double = float64 (default: the model file's own)")


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
