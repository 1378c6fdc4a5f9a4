"""Subcommands ``density``, ``fit-a1``, ``transfer`` and ``volume-scan``."""

from __future__ import annotations

import argparse

from ...cli_checks import existing_dir, existing_file, finite_float, platform_name, positive_float, positive_int
from ...cli_common import add_precision_option
from ..liquid_cli import (
    add_correction_options,
    add_hydrogen_mass_option,
    add_liquid_options,
    add_model_and_npt_options,
    check_box_fits_cutoff,
    correction_from_args,
    correction_parameters,
    describe_correction,
    liquid_setup_from_args,
    npt_dynamics_from_args,
    resolve_liquid,
)


def register(subparsers) -> None:
    density = subparsers.add_parser("density", help="NPT density of a liquid (GAFF or MACE base, optional CSO)",
                                    description="Pack a box, run NPT (Langevin, MC barostat) and report the "
                                                "density with its standard error. Resumable.")
    add_liquid_options(density)
    add_hydrogen_mass_option(density)
    density.set_defaults(handler=_density)

    fit = subparsers.add_parser("fit-a1", help="fit the CSO damping a1 to an experimental density",
                                description="Find the a1 whose NPT density matches experiment, by the "
                                            "published linear scan and/or fluctuation + MBAR reweighting "
                                            "with Newton steps (fewer simulations). Resumable.")
    add_liquid_options(fit)
    add_hydrogen_mass_option(fit)
    fit.add_argument("--target", type=positive_float, default=None, help="target density g/cm3 (default: experiment)")
    fit.add_argument("--method", choices=["scan", "reweighting", "both"], default="reweighting")
    fit.add_argument("--a1-values", type=finite_float, nargs="+", default=[0.0, 0.5, 1.0, 1.5],
                     help="a1 values of the scan")
    fit.add_argument("--a1-initial", type=finite_float, default=None,
                     help="first a1 of the reweighting fit (default: the --correction's a1, else 1.0)")
    fit.add_argument("--tolerance", type=positive_float, default=0.002, help="g/cm3")
    fit.add_argument("--min-effective-samples", type=positive_float, default=50.0)
    fit.add_argument("--max-simulations", type=positive_int, default=6)
    from ...cli_common import add_executor_options

    add_executor_options(fit)
    fit.set_defaults(handler=_fit_a1)

    transfer = subparsers.add_parser(
        "transfer", help="densities of other liquids with a fitted (alpha, a1) vs experiment (MAE table)",
        description="Run NPT for every case without (alpha = 0) and with the fitted correction and print "
                    "density vs experiment and the MAE, like the published Table 1. Resumable.")
    transfer.add_argument("cases", nargs="*", default=list(DEFAULT_TRANSFER_CASES),
                          help="SYSTEM or SYSTEM@TEMPERATURE from the shipped experimental table "
                               f"(default: {' '.join(DEFAULT_TRANSFER_CASES)})")
    transfer.add_argument("--n-molecules", type=positive_int, default=100, help="molecules per box (default 100)")
    add_model_and_npt_options(transfer)
    add_hydrogen_mass_option(transfer)
    transfer.set_defaults(out="runs/transfer")
    add_executor_options(transfer)
    transfer.set_defaults(handler=_transfer)
    _register_volume_scan(subparsers)


# The published Table 1 liquids, each at its table temperature.
DEFAULT_TRANSFER_CASES = ("EC@313.15", "EMC@298.15", "DMC@298.15", "EA@298.15")


def _density(args: argparse.Namespace) -> int:
    import time

    from .plots import plot_density_trace
    from .tasks import DensityTask, run_density_task

    correction = correction_from_args(args)
    spec, protocol, experiment, out = resolve_liquid(args)
    setup = liquid_setup_from_args(args, spec, correction)
    print_wall_time_estimate(args, setup, protocol, correction_parameters(correction), 1)
    started = time.perf_counter()
    result = run_density_task(DensityTask(setup, protocol, correction_parameters(correction), out, True))
    elapsed = time.perf_counter() - started
    png = plot_density_trace(result, out / "density.png", experiment.density_g_cm3 if experiment else None)
    masses = "" if protocol.dynamics.hydrogen_mass_amu is None else \
        f"; hydrogen mass {protocol.dynamics.hydrogen_mass_amu:g} amu, {protocol.dynamics.timestep_fs:g} fs step"
    print(f"density {result.density} (N_eff {result.density.n_effective:.0f}) at "
          f"{protocol.dynamics.temperature_K:g} K, {protocol.dynamics.pressure_bar:g} bar; {describe_correction(correction)}"
          f"{masses}")
    if not result.window.equilibrated:
        print("warning: the density was still drifting at the start of the averaging window; run longer")
    if experiment is not None and experiment.density_g_cm3:
        print(f"experiment {experiment.density_g_cm3:.3f} g/cm3 ({experiment.source}); "
              f"deviation {result.density.value - experiment.density_g_cm3:+.4f}")
    print(f"plot: {png}; data: {out / 'density.json'}; this call took {elapsed:.0f} s "
          f"(a resumed or finished run counts only what it ran now)")
    return 0


def _fit_a1(args: argparse.Namespace) -> int:
    from ...cli_common import executor_from_args
    from ...errors import PropertyError
    from .a1_fit import correction_from_fit, fit_a1_reweighting, scan_a1
    from .plots import plot_a1_fit

    if args.a1 is not None:
        raise PropertyError("fit-a1 fits a1: give its starting value as --a1-initial, not --a1")
    alpha, s6, a1_initial = args.alpha, 1.0, args.a1_initial
    if args.correction is not None:  # refit from an earlier correction: its alpha and s6, its a1 to start
        from ...potentials.correction_choice import choose_correction

        start = choose_correction(args.correction, model_path=args.model, force=args.force_correction)
        if alpha is not None and alpha != start.alpha:
            raise PropertyError(f"--alpha {alpha:g} disagrees with the --correction's alpha {start.alpha:g}")
        alpha, s6 = start.alpha, start.s6
        a1_initial = start.a1 if a1_initial is None else a1_initial
    if not alpha:
        raise PropertyError("fit-a1 needs --alpha (the scale whose a1 it fits; alpha = 0 switches the CSO term "
                            "off, so a1 would have no effect), e.g. --alpha -0.05, or --correction FILE")
    a1_initial = 1.0 if a1_initial is None else a1_initial
    spec, protocol, experiment, out = resolve_liquid(args)
    target = args.target if args.target is not None else (experiment.density_g_cm3 if experiment else None)
    if target is None:
        raise PropertyError("give --target DENSITY or --experiment SYSTEM")
    from ...potentials.correction_choice import CSOCorrection

    setup = liquid_setup_from_args(args, spec, CSOCorrection(alpha, a1_initial, s6))
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
                                     temperature_K=protocol.dynamics.temperature_K,
                                     pressure_bar=protocol.dynamics.pressure_bar,
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
    from ..experimental import parse_system_at_temperature

    return parse_system_at_temperature(text, require_row=True)[0]


def _transfer(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from ...cli_common import executor_from_args
    from ...errors import PropertyError
    from ..liquid import LiquidSpec
    from .npt import NPTProtocol
    from .transfer import format_transfer_table, run_transfer

    correction = correction_from_args(args, required=True)
    cases = [parse_transfer_case(text) for text in args.cases]
    if missing := [c.system for c in cases if c.density_g_cm3 is None]:
        raise PropertyError(f"no experimental density for {', '.join(missing)}")
    for case in cases:
        check_box_fits_cutoff(LiquidSpec.from_experiment(case, args.n_molecules), args.cso_cutoff, args.cso_switch)
    protocol = NPTProtocol(npt_dynamics_from_args(args), n_steps=args.steps, report_interval=args.report_interval,
                           average_last_ps=args.average_last_ps)
    if args.temperature is not None:
        cases = [replace(c, temperature_K=args.temperature) for c in cases]

    def make_setup(case):
        return liquid_setup_from_args(args, LiquidSpec.from_experiment(case, args.n_molecules), correction)

    with executor_from_args(args) as executor:
        rows = run_transfer(cases, make_setup, correction.alpha, correction.a1, Path(args.out), protocol, executor)
    print(f"{describe_correction(correction)}; densities in g/cm3")
    print(format_transfer_table(rows))
    print(f"data: {Path(args.out) / 'transfer.json'}")
    return 0


def _register_volume_scan(subparsers) -> None:

    parser = subparsers.add_parser(
        "volume-scan", help="the paper's Fig. 5 check: force and energy errors on a rigid-volume scan set with "
                            "and without the CSO correction",
        description="Evaluate a MACE model with the CSO correction off and on (the same TorchForce + CSO System "
                    "the density runs use) on the rigid-volume scan test set of `physembed liquid-dataset`, and "
                    "print, per box scale factor, the energy change along the scans and the force RMSE against "
                    "the GFN2-xTB labels (published: the correction changes the force RMSE by < 0.8 meV/A). "
                    "Writes OUT/volume_scan.json and volume_scan.png.")
    parser.add_argument("--model", required=True, type=existing_file, help="MACE model file")
    parser.add_argument("--dataset", required=True, type=existing_dir,
                        help="directory of `physembed liquid-dataset` (test_scan.extxyz, topology.pdb)")
    add_correction_options(parser)
    add_precision_option(parser)
    parser.add_argument("--platform", type=platform_name, default=None)
    parser.add_argument("-o", "--out", default=None, help="output directory (default DATASET/volume_scan)")
    parser.set_defaults(handler=_volume_scan)


def _volume_scan(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ...cli_checks import require_files
    from ...errors import PropertyError
    from .volume_scan import evaluate_volume_scan, format_table

    require_files(args.dataset, ("test_scan.extxyz", "topology.pdb"), PropertyError, "`physembed liquid-dataset`")
    correction = correction_from_args(args, required=True)
    dataset = Path(args.dataset)
    out = Path(args.out or dataset / "volume_scan")
    result = evaluate_volume_scan(args.model, dataset / "test_scan.extxyz", dataset / "topology.pdb", correction,
                                  out_dir=out, dtype=args.dtype, platform=args.platform)
    print(f"{describe_correction(correction)}; CSO cutoff {result.cso_cutoff_nm} nm (long-range correction beyond)")
    print(format_table(result))
    print(f"-> {result.json_path}, {result.plot_path}")
    return 0
