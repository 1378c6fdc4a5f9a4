"""Command-line options that describe a liquid, its base potential, CSO correction and NPT run.

Shared by ``density``, ``fit-a1``, ``transfer``, ``viscosity`` and ``volume-scan`` so they describe a liquid alike;
the composition options (:func:`add_composition_options`) also by ``liquid-dataset``.
"""

from __future__ import annotations

import argparse

from ..cli_checks import existing_file, finite_float, md_seed, platform_name, positive_float, positive_int
from ..cli_common import add_precision_option


def add_liquid_options(parser: argparse.ArgumentParser) -> None:
    add_composition_options(parser, default_n_molecules=100)
    add_model_and_npt_options(parser)


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
    parser.add_argument("--packing-density", type=positive_float, default=None, help="g/cm3 for packmol (default: "
                                                                             "experiment or 1.0)")


def composition_from_args(args: argparse.Namespace):
    """``(LiquidSpec, ExperimentalLiquid or None)`` from :func:`add_composition_options`' options
    (``args.temperature``, when present, picks the experimental row)."""
    from ..errors import PropertyError
    from .experimental import lookup
    from .liquid import LiquidSpec

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


def add_model_and_npt_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=existing_file, default=None,
                        help="MACE model file; without it the base is GAFF")
    add_correction_options(parser)
    parser.add_argument("--cso-cutoff", type=positive_float, default=1.2,
                        help="CSO cutoff, nm (box must be twice that)")
    parser.add_argument("--cso-switch", type=positive_float, default=None,
                        help="switch the CSO off smoothly from this distance (nm) to the cutoff")
    parser.add_argument("--gaff-cutoff", type=positive_float, default=1.0,
                        help="GAFF nonbonded cutoff, nm, of a GAFF base (PME and the LJ long-range correction "
                             "beyond; a small box needs a shorter one, e.g. 0.45 of its edge)")
    parser.add_argument("--charge-method", choices=["bcc", "gasteiger"], default="bcc")
    add_precision_option(parser)
    parser.add_argument("--temperature", type=positive_float, default=None,
                        help="K (default: the experiment's or 298.15)")
    parser.add_argument("--pressure", type=finite_float, default=1.0, help="bar")
    parser.add_argument("--steps", type=positive_int, default=1_000_000, help="NPT steps (published: 1 ns at 1 fs)")
    parser.add_argument("--timestep", type=positive_float, default=1.0, help="fs")
    parser.add_argument("--report-interval", type=positive_int, default=100, help="steps between stored frames")
    parser.add_argument("--average-last-ps", type=positive_float, default=200.0, help="averaging window (ps)")
    parser.add_argument("--platform", type=platform_name, default=None, help="OpenMM platform (default: automatic)")
    parser.add_argument("--seed", type=md_seed, default=2024)
    parser.add_argument("--skip-timing", action="store_true",
                        help="do not time a few steps first (runs of 20000+ steps print their estimated wall time)")
    parser.add_argument("-o", "--out", default=None, help="output directory")


def add_hydrogen_mass_option(parser: argparse.ArgumentParser) -> None:
    """``--hydrogen-mass AMU``: repartitioned hydrogen masses for density runs (no effect on a density).

    Only density commands take it: it changes the dynamics, which a Green-Kubo viscosity measures.
    """
    parser.add_argument("--hydrogen-mass", type=float, default=None, metavar="AMU",
                        help="hydrogen mass repartitioning: each H bonded to a heavy atom gets this mass, taken "
                             "from that atom (total mass and density unchanged), e.g. 3 with --timestep 2 "
                             "(default: the force field's masses)")


def add_correction_options(parser: argparse.ArgumentParser) -> None:
    """``--alpha``/``--a1``, ``--correction``, ``--force-correction``: how the CSO term is chosen (no default)."""
    group = parser.add_argument_group("CSO correction: --alpha and --a1, or --correction (no default values)")
    group.add_argument("--alpha", type=finite_float, default=None, help="scale of the CSO term (0 = off)")
    group.add_argument("--a1", type=finite_float, default=None, help="CSO damping parameter a1 (with --alpha)")
    group.add_argument("--correction", default=None, metavar="FILE|NAME",
                       help="(alpha, a1, s6) from the correction.json `physembed fit-a1` writes (refused if it was "
                            "fitted for another --model), or a published pair for its own model file only: "
                            "mace-off23-small, mace-ec-emc")
    group.add_argument("--force-correction", action="store_true",
                       help="use a --correction file fitted for another model anyway")


def correction_from_args(args: argparse.Namespace, required: bool = False):
    """The :class:`~openmm_physembed.potentials.correction_choice.CSOCorrection` the options choose, or
    ``None`` for no correction (no option, or ``--alpha 0`` alone); ``required`` refuses ``None``."""
    from ..errors import PropertyError
    from ..potentials.correction_choice import choose_correction

    off = args.correction is None and args.a1 is None and not args.alpha
    chosen = None if off else choose_correction(args.correction, alpha=args.alpha, a1=args.a1,
                                                model_path=args.model, force=args.force_correction)
    if required and (chosen is None or chosen.alpha == 0):
        raise PropertyError(f"`physembed {args.command}` needs a CSO correction: give --correction FILE (from "
                            "`physembed fit-a1`) or --alpha and --a1 (alpha = 0 switches the term off)")
    return chosen


def describe_correction(correction) -> str:
    if correction is None:
        return "no CSO correction"
    origin = "" if correction.source == "explicit" else f" from {correction.source}"
    return f"alpha={correction.alpha:g}, a1={correction.a1:g}, s6={correction.s6:g}{origin}"


def resolve_liquid(args):
    from pathlib import Path

    from .density.npt import NPTProtocol

    spec, experiment = composition_from_args(args)
    temperature = liquid_temperature(args, experiment)
    protocol = NPTProtocol(npt_dynamics_from_args(args, temperature), n_steps=args.steps,
                           report_interval=args.report_interval, average_last_ps=args.average_last_ps)
    out = Path(args.out or f"runs/{liquid_name(args, spec)}_{temperature:g}K")
    return spec, protocol, experiment, out


def npt_dynamics_from_args(args, temperature_K: float = 298.15):
    """Langevin at ``temperature_K`` and ``--pressure``, with ``--timestep``, ``--seed``, ``--platform``
    and ``--hydrogen-mass`` (absent from commands without it: None)."""
    from ..simulation.dynamics import Dynamics

    return Dynamics(temperature_K=temperature_K, timestep_fs=args.timestep, pressure_bar=args.pressure,
                    seed=args.seed, platform=args.platform, hydrogen_mass_amu=getattr(args, "hydrogen_mass", None))


def liquid_setup_from_args(args, spec, correction):
    """Box + base + CSO for ``correction`` (a CSOCorrection; ``None``: the term is present but off)."""
    from .liquid import build_liquid_setup

    check_box_fits_cutoff(spec, args.cso_cutoff, args.cso_switch)

    values = {} if correction is None else {"alpha": correction.alpha, "a1": correction.a1, "s6": correction.s6}
    return build_liquid_setup(spec, model_path=args.model, cso_cutoff_nm=args.cso_cutoff,
                              cso_switch_nm=args.cso_switch, gaff_cutoff_nm=args.gaff_cutoff,
                              charge_method=args.charge_method, dtype=args.dtype,
                              **values)


def check_box_fits_cutoff(spec, cso_cutoff_nm: float, cso_switch_nm: float | None = None) -> None:
    """Refuse a CSO switch past its cutoff, or a box narrower than twice the cutoff, before the box is
    packed: the CSO term would refuse them only after GAFF typing and packmol (minutes, and files in
    the cache). The box edge is the one :func:`~openmm_physembed.chem.box.build_box` will pack."""
    from ..chem.box import box_edge_for_density, counts_from_mass_fractions
    from ..chem.molecule import Molecule
    from ..errors import PropertyError

    if cso_switch_nm is not None and not cso_switch_nm < cso_cutoff_nm:
        raise PropertyError(f"--cso-switch {cso_switch_nm:g} nm must be shorter than --cso-cutoff "
                            f"{cso_cutoff_nm:g} nm")
    molecules = [Molecule.from_any(c) for c in spec.components]
    counts = spec.counts
    if counts is None and spec.mass_fractions is not None and spec.n_molecules:
        counts = counts_from_mass_fractions(molecules, spec.mass_fractions, spec.n_molecules)
    if counts is None or len(counts) != len(molecules):
        return  # build_box says what is missing, before it types or packs anything
    edge = box_edge_for_density(molecules, counts, spec.packing_density_g_cm3)
    if 2.0 * cso_cutoff_nm > edge:
        raise PropertyError(f"{sum(counts)} molecules at {spec.packing_density_g_cm3:g} g/cm3 fill a {edge:.2f} nm "
                            f"box, narrower than twice the CSO cutoff ({cso_cutoff_nm:g} nm): give more --n-molecules "
                            "or a shorter --cso-cutoff")


def correction_parameters(correction) -> dict:
    """Global parameter values a run sets: the correction's, or alpha = 0 (off)."""
    if correction is None:
        return {"alpha": 0.0, "a1": 0.0}
    return {"alpha": correction.alpha, "a1": correction.a1}
