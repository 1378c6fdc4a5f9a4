"""Subcommands ``density``, ``fit-a1`` and ``transfer``."""

from __future__ import annotations

import argparse


def _add_liquid_options(parser: argparse.ArgumentParser) -> None:
    from ..cli_common import add_composition_options

    add_composition_options(parser, default_n_molecules=100)
    _add_model_and_npt_options(parser)


def _add_model_and_npt_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="MACE model file; without it the base is GAFF")
    add_correction_options(parser)
    parser.add_argument("--cso-cutoff", type=float, default=1.2, help="CSO cutoff, nm (box must be twice that)")
    parser.add_argument("--cso-switch", type=float, default=None,
                        help="switch the CSO off smoothly from this distance (nm) to the cutoff")
    parser.add_argument("--charge-method", choices=["bcc", "gasteiger"], default="bcc")
    parser.add_argument("--dtype", "--precision", dest="dtype", choices=["float32", "float64", "single", "double"],
                        default="float32", help="MACE precision (single = float32, double = float64)")
    parser.add_argument("--temperature", type=float, default=None, help="K (default: the experiment's or 298.15)")
    parser.add_argument("--pressure", type=float, default=1.0, help="bar")
    parser.add_argument("--steps", type=int, default=1_000_000, help="NPT steps (published: 1 ns at 1 fs)")
    parser.add_argument("--timestep", type=float, default=1.0, help="fs")
    parser.add_argument("--report-interval", type=int, default=100, help="steps between stored frames")
    parser.add_argument("--average-last-ps", type=float, default=200.0, help="averaging window (ps)")
    parser.add_argument("--platform", default=None, help="OpenMM platform (default: automatic)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--skip-timing", action="store_true",
                        help="do not time a few steps first (runs of 20000+ steps print their estimated wall time)")
    parser.add_argument("-o", "--out", default=None, help="output directory")


def add_correction_options(parser: argparse.ArgumentParser) -> None:
    """``--alpha``/``--a1``, ``--correction``, ``--force-correction``: how the CSO term is chosen (no default)."""
    group = parser.add_argument_group("CSO correction: --alpha and --a1, or --correction (no default values)")
    group.add_argument("--alpha", type=float, default=None, help="scale of the CSO term (0 = off)")
    group.add_argument("--a1", type=float, default=None, help="CSO damping parameter a1 (with --alpha)")
    group.add_argument("--correction", default=None, metavar="FILE|NAME",
                       help="(alpha, a1, s6) from the correction.json `physembed fit-a1` writes (refused if it was "
                            "fitted for another --model), or a published pair for its own model file only: "
                            "mace-off23-small, mace-ec-emc")
    group.add_argument("--force-correction", action="store_true",
                       help="use a --correction file fitted for another model anyway")


def correction_from_args(args: argparse.Namespace, required: bool = False):
    """The :class:`~openmm_physembed.potentials.corrections.CSOCorrection` the options choose, or
    ``None`` for no correction (no option, or ``--alpha 0`` alone); ``required`` refuses ``None``."""
    from ..errors import PropertyError
    from ..potentials.corrections import choose_correction

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


def register(subparsers) -> None:
    density = subparsers.add_parser("density", help="NPT density of a liquid (GAFF or MACE base, optional CSO)",
                                    description="Pack a box, run NPT (Langevin, MC barostat) and report the "
                                                "density with its standard error. Resumable.")
    _add_liquid_options(density)
    density.set_defaults(handler=_density)

    fit = subparsers.add_parser("fit-a1", help="fit the CSO damping a1 to an experimental density",
                                description="Find the a1 whose NPT density matches experiment, by the "
                                            "published linear scan and/or fluctuation + MBAR reweighting "
                                            "with Newton steps (fewer simulations). Resumable.")
    _add_liquid_options(fit)
    fit.add_argument("--target", type=float, default=None, help="target density g/cm3 (default: experiment)")
    fit.add_argument("--method", choices=["scan", "reweighting", "both"], default="reweighting")
    fit.add_argument("--a1-values", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5],
                     help="a1 values of the scan")
    fit.add_argument("--a1-initial", type=float, default=None,
                     help="first a1 of the reweighting fit (default: the --correction's a1, else 1.0)")
    fit.add_argument("--tolerance", type=float, default=0.002, help="g/cm3")
    fit.add_argument("--min-effective-samples", type=float, default=50.0)
    fit.add_argument("--max-simulations", type=int, default=6)
    from ..cli_common import add_executor_options

    add_executor_options(fit)
    fit.set_defaults(handler=_fit_a1)

    transfer = subparsers.add_parser(
        "transfer", help="densities of other liquids with a fitted (alpha, a1) vs experiment (MAE table)",
        description="Run NPT for every case without (alpha = 0) and with the fitted correction and print "
                    "density vs experiment and the MAE, like the published Table 1. Resumable.")
    transfer.add_argument("cases", nargs="*", default=list(DEFAULT_TRANSFER_CASES),
                          help="SYSTEM or SYSTEM@TEMPERATURE from the shipped experimental table "
                               f"(default: {' '.join(DEFAULT_TRANSFER_CASES)})")
    transfer.add_argument("--n-molecules", type=int, default=100, help="molecules per box (default 100)")
    _add_model_and_npt_options(transfer)
    transfer.set_defaults(out="runs/transfer")
    add_executor_options(transfer)
    transfer.set_defaults(handler=_transfer)


# The published Table 1 liquids, each at its table temperature.
DEFAULT_TRANSFER_CASES = ("EC@313.15", "EMC@298.15", "DMC@298.15", "EA@298.15")


def _resolve(args):
    from pathlib import Path

    from ..cli_common import composition_from_args, liquid_name, liquid_temperature
    from .density import NPTProtocol

    spec, experiment = composition_from_args(args)
    temperature = liquid_temperature(args, experiment)
    protocol = NPTProtocol(temperature_K=temperature, pressure_bar=args.pressure, timestep_fs=args.timestep,
                           n_steps=args.steps, report_interval=args.report_interval,
                           average_last_ps=args.average_last_ps, seed=args.seed, platform=args.platform)
    out = Path(args.out or f"runs/{liquid_name(args, spec)}_{temperature:g}K")
    return spec, protocol, experiment, out


def _setup(args, spec, correction):
    """Box + base + CSO for ``correction`` (a CSOCorrection; ``None``: the term is present but off)."""
    from .liquid import build_liquid_setup

    values = {} if correction is None else {"alpha": correction.alpha, "a1": correction.a1, "s6": correction.s6}
    return build_liquid_setup(spec, model_path=args.model, cso_cutoff_nm=args.cso_cutoff,
                              cso_switch_nm=args.cso_switch, charge_method=args.charge_method, dtype=args.dtype,
                              **values)


def correction_parameters(correction) -> dict:
    """Global parameter values a run sets: the correction's, or alpha = 0 (off)."""
    if correction is None:
        return {"alpha": 0.0, "a1": 0.0}
    return {"alpha": correction.alpha, "a1": correction.a1}


def _density(args: argparse.Namespace) -> int:
    import time

    from .density_plots import plot_density_trace
    from .tasks import DensityTask, run_density_task

    correction = correction_from_args(args)
    spec, protocol, experiment, out = _resolve(args)
    setup = _setup(args, spec, correction)
    print_wall_time_estimate(args, setup, protocol, correction_parameters(correction), 1)
    started = time.perf_counter()
    result = run_density_task(DensityTask(setup, protocol, correction_parameters(correction), out, True))
    elapsed = time.perf_counter() - started
    png = plot_density_trace(result, out / "density.png", experiment.density_g_cm3 if experiment else None)
    print(f"density {result.density} (N_eff {result.density.n_effective:.0f}) at "
          f"{protocol.temperature_K:g} K, {protocol.pressure_bar:g} bar; {describe_correction(correction)}")
    if not result.window.equilibrated:
        print("warning: the density was still drifting at the start of the averaging window; run longer")
    if experiment is not None and experiment.density_g_cm3:
        print(f"experiment {experiment.density_g_cm3:.3f} g/cm3 ({experiment.source}); "
              f"deviation {result.density.value - experiment.density_g_cm3:+.4f}")
    print(f"plot: {png}; data: {out / 'density.json'}; this call took {elapsed:.0f} s "
          f"(a resumed or finished run counts only what it ran now)")
    return 0


def _fit_a1(args: argparse.Namespace) -> int:
    from ..cli_common import executor_from_args
    from ..errors import PropertyError
    from .a1_fit import correction_from_fit, fit_a1_reweighting, scan_a1
    from .density_plots import plot_a1_fit

    if args.a1 is not None:
        raise PropertyError("fit-a1 fits a1: give its starting value as --a1-initial, not --a1")
    alpha, s6, a1_initial = args.alpha, 1.0, args.a1_initial
    if args.correction is not None:  # refit from an earlier correction: its alpha and s6, its a1 to start
        from ..potentials.corrections import choose_correction

        start = choose_correction(args.correction, model_path=args.model, force=args.force_correction)
        if alpha is not None and alpha != start.alpha:
            raise PropertyError(f"--alpha {alpha:g} disagrees with the --correction's alpha {start.alpha:g}")
        alpha, s6 = start.alpha, start.s6
        a1_initial = start.a1 if a1_initial is None else a1_initial
    if not alpha:
        raise PropertyError("fit-a1 needs --alpha (the scale whose a1 it fits; alpha = 0 switches the CSO term "
                            "off, so a1 would have no effect), e.g. --alpha -0.05, or --correction FILE")
    a1_initial = 1.0 if a1_initial is None else a1_initial
    spec, protocol, experiment, out = _resolve(args)
    target = args.target if args.target is not None else (experiment.density_g_cm3 if experiment else None)
    if target is None:
        raise PropertyError("give --target DENSITY or --experiment SYSTEM")
    from ..potentials.corrections import CSOCorrection

    setup = _setup(args, spec, CSOCorrection(alpha, a1_initial, s6))
    n_scan = len(args.a1_values) if args.method in ("scan", "both") else 0
    n_reweighting = (2, args.max_simulations) if args.method in ("reweighting", "both") else (0, 0)
    print_wall_time_estimate(args, setup, protocol, {"alpha": alpha, "a1": a1_initial},
                             (n_scan + n_reweighting[0], n_scan + n_reweighting[1]))
    results = []
    with executor_from_args(args) as executor:
        if args.method in ("scan", "both"):
            results.append(scan_a1(setup, args.a1_values, target, out / "scan", protocol, executor,
                                   fixed_parameters={"alpha": alpha}))
        if args.method in ("reweighting", "both"):
            results.append(fit_a1_reweighting(setup, target, out / "reweighting", a1_initial, protocol,
                                              args.tolerance, args.min_effective_samples, args.max_simulations,
                                              fixed_parameters={"alpha": alpha}, executor=executor))
    for res in results:
        final = f"; confirming run {res.final_density}" if res.final_density else ""
        print(f"{res.method:>12}: a1 = {res.a1.value:.4f} ± {res.a1.stderr:.4f} from {res.n_simulations} "
              f"simulations ({res.simulated_ps:.0f} ps simulated){final}")
    png = plot_a1_fit(results, out / "a1_fit.png", args.tolerance)
    print(f"target {target:.4f} g/cm3; plot: {png}")
    # The reweighting fit (a confirming run at its a1) is preferred over the scan's straight line.
    best = results[-1]
    correction = correction_from_fit(best, alpha, model_path=args.model, s6=s6, liquid=spec_name(args, spec),
                                     temperature_K=protocol.temperature_K, pressure_bar=protocol.pressure_bar,
                                     cso_cutoff_nm=args.cso_cutoff)
    path = correction.write(out / "correction.json")
    model = f"model {args.model}" if args.model else "the GAFF base"
    print(f"correction for {model}: {path} (alpha={alpha:g}, a1={correction.a1:.4f}); use it with "
          f"--correction {path}")
    return 0


def print_wall_time_estimate(args, setup, protocol, parameters: dict, n_runs) -> None:
    """Time a few steps of the job's System and print how long the job will take (long runs only)."""
    from .wall_time import estimate_message, time_npt_step, worth_estimating

    if args.skip_timing or not worth_estimating(protocol):
        return
    step_seconds, platform = time_npt_step(setup, protocol, parameters)
    print(estimate_message(step_seconds, protocol, n_runs, workers=getattr(args, "workers", None) or 1,
                           platform=platform), flush=True)


def spec_name(args, spec) -> str:
    """The liquid, as the experimental table or the components name it."""
    if args.experiment:
        return args.experiment
    composition = spec.counts or spec.mass_fractions
    return " ".join(spec.components) + (f" {':'.join(f'{c:g}' for c in composition)}" if composition else "")


def parse_transfer_case(text: str):
    """'EMC' (the table's first temperature for it) or 'EC:EMC 3:7@303.15' -> an ExperimentalLiquid."""
    from ..errors import PropertyError
    from .experimental import experimental_liquids, lookup

    system, _, temperature = text.partition("@")
    if temperature:
        try:
            return lookup(system, float(temperature))
        except ValueError:
            raise PropertyError(f"bad case {text!r}: the temperature after '@' must be a number in K") from None
    rows = [r for r in experimental_liquids() if r.system.lower() == system.strip().lower()]
    if not rows:
        return lookup(system, 298.15)  # raises with the list of known systems
    return rows[0]


def _transfer(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from ..cli_common import executor_from_args
    from ..errors import PropertyError
    from .density import NPTProtocol
    from .liquid import LiquidSpec
    from .transfer import format_transfer_table, run_transfer

    correction = correction_from_args(args, required=True)
    cases = [parse_transfer_case(text) for text in args.cases]
    if missing := [c.system for c in cases if c.density_g_cm3 is None]:
        raise PropertyError(f"no experimental density for {', '.join(missing)}")
    protocol = NPTProtocol(pressure_bar=args.pressure, timestep_fs=args.timestep, n_steps=args.steps,
                           report_interval=args.report_interval, average_last_ps=args.average_last_ps,
                           seed=args.seed, platform=args.platform)
    if args.temperature is not None:
        cases = [replace(c, temperature_K=args.temperature) for c in cases]

    def make_setup(case):
        return _setup(args, LiquidSpec.from_experiment(case, args.n_molecules), correction)

    with executor_from_args(args) as executor:
        rows = run_transfer(cases, make_setup, correction.alpha, correction.a1, Path(args.out), protocol, executor)
    print(f"{describe_correction(correction)}; densities in g/cm3")
    print(format_transfer_table(rows))
    print(f"data: {Path(args.out) / 'transfer.json'}")
    return 0
