"""Subcommand ``viscosity`` (Green-Kubo shear viscosity of a liquid).

Each property adds its own ``_register_<name>(subparsers)`` and a line in :func:`register`.
The liquid options (components, ``--experiment``, ``--model``, ``--alpha``/``--a1`` or
``--correction``, NPT settings) are the ones ``physembed density`` uses, so both commands
describe a liquid alike.
"""

from __future__ import annotations

import argparse

from ...cli_checks import existing_file, non_negative_int, positive_float, positive_int


def register(subparsers) -> None:
    _register_viscosity(subparsers)


def _register_viscosity(subparsers) -> None:
    from ...cli_common import add_executor_options
    from ..liquid_cli import add_liquid_options

    parser = subparsers.add_parser(
        "viscosity", help="Green-Kubo shear viscosity of a liquid (GAFF or MACE base, optional CSO)",
        description="Equilibrate by NPT (or read frames), run NVT replicas from random frames while sampling "
                    "the pressure tensor, and report the viscosity in cP by STACIE and by time decomposition. "
                    "Published protocol: 1 ns NPT, 3 x 5 ns NVT at 1 fs. Resumable: rerun to continue.")
    add_liquid_options(parser)  # --steps/--timestep/--report-interval/--average-last-ps: the NPT stage
    group = parser.add_argument_group("Green-Kubo NVT stage")
    group.add_argument("--frames", type=existing_file, default=None, metavar="NPZ",
                       help="start from these frames (arrays positions_nm (n, atoms, 3) and box_nm (n, 3, 3)) "
                            "instead of running NPT")
    group.add_argument("--frame-interval", type=positive_int, default=1000, help="NPT steps between kept frames")
    group.add_argument("--replicas", type=positive_int, default=3, help="NVT runs from random frames (default 3)")
    group.add_argument("--nvt-steps", type=positive_int, default=5_000_000, help="production steps per replica (5 ns)")
    group.add_argument("--nvt-equilibration-steps", type=non_negative_int, default=10_000,
                       help="NVT steps before sampling starts")
    group.add_argument("--sample-interval", type=positive_int, default=5, help="steps between pressure-tensor samples")
    group.add_argument("--thermostat", choices=["nose-hoover", "langevin"], default="nose-hoover")
    group.add_argument("--thermostat-rate", type=positive_float, default=1.0,
                       help="Nose-Hoover collision frequency or Langevin friction, 1/ps")
    group.add_argument("--pressure-provider", default="auto",
                       help="pressure-tensor provider: auto (exact-mace with --model, else finite-difference), "
                            "exact-mace, finite-difference")
    group.add_argument("--stacie-model", choices=["lorentz", "exppoly", "pade"], default="lorentz")
    group.add_argument("--segments", type=positive_int, default=10, help="time-decomposition segments per replica")
    group.add_argument("--std-fraction", type=positive_float, default=0.4,
                       help="time-decomposition cutoff: spread of the curves / mean (Zhang et al.: 0.4)")
    add_executor_options(parser)
    parser.set_defaults(handler=_viscosity)


def _load_frames(path):
    import numpy as np

    from ...errors import PropertyError

    try:
        data = np.load(path)
        return data["positions_nm"], data["box_nm"]
    except (OSError, KeyError, ValueError) as exc:
        raise PropertyError(f"cannot read frames from {path!r} ({exc}); expected an .npz with arrays "
                            "positions_nm (n, atoms, 3) and box_nm (n, 3, 3)") from exc


def _viscosity(args: argparse.Namespace) -> int:
    from ...cli_common import executor_from_args
    from ...errors import PropertyError
    from ...simulation.dynamics import Dynamics
    from ..liquid_cli import (
        correction_from_args,
        correction_parameters,
        describe_correction,
        liquid_setup_from_args,
        resolve_liquid,
    )
    from .plots import plot_viscosity
    from .pressure import available_pressure_providers
    from .workflow import (
        GreenKuboAnalysis,
        ViscosityProtocol,
        run_npt_frames,
        run_viscosity,
    )

    if args.pressure_provider not in available_pressure_providers():  # it is first needed after the NPT
        raise PropertyError(f"unknown pressure-tensor provider {args.pressure_provider!r}; available: "
                            f"{', '.join(available_pressure_providers())}")
    correction = correction_from_args(args)
    spec, npt_protocol, experiment, out = resolve_liquid(args)
    positions = boxes = None
    if args.frames:  # read before the box is packed, so that a bad file stops the command first
        positions, boxes = _load_frames(args.frames)
    setup = liquid_setup_from_args(args, spec, correction)
    parameters = correction_parameters(correction)
    if positions is None:
        # Its own NPT directory: ``physembed density`` keeps a differently configured run in out/npt.
        positions, boxes = run_npt_frames(setup, out / "viscosity", npt_protocol,
                                          frame_interval=args.frame_interval, parameters=parameters)
    nvt = Dynamics(temperature_K=npt_protocol.dynamics.temperature_K, timestep_fs=args.timestep,
                   thermostat=args.thermostat, friction_per_ps=args.thermostat_rate, seed=args.seed,
                   platform=args.platform)
    protocol = ViscosityProtocol(nvt, n_steps=args.nvt_steps, equilibration_steps=args.nvt_equilibration_steps,
                                 sample_interval=args.sample_interval, n_replicas=args.replicas,
                                 pressure_provider=args.pressure_provider)
    analysis = GreenKuboAnalysis(stacie_model=args.stacie_model, n_segments=args.segments,
                                 std_fraction=args.std_fraction)
    with executor_from_args(args) as executor:
        result = run_viscosity(setup, positions, boxes, out / "viscosity", protocol, analysis, executor=executor,
                               parameters=parameters, progress=args.serial or args.workers == 1)
    reference = experiment.viscosity_cP if experiment is not None else None
    plots = plot_viscosity(result, out / "viscosity", reference_cp=reference)
    print(f"viscosity at {protocol.dynamics.temperature_K:g} K, {describe_correction(correction)} "
          f"({protocol.n_replicas} x {result.production_ps:g} ps NVT, volume {result.volume_nm3:.3f} nm^3):")
    if result.details.stacie is not None:
        print(f"  STACIE ({analysis.stacie_model}):  {result.stacie} "
              f"({result.stacie.n_effective:.0f} effective spectrum points)")
    td = result.details.time_decomposition
    if td is not None:
        print(f"  time decomposition:  {result.time_decomposition} ({td.n_curves} curves, t_cut {td.cutoff_time:.3g} ps)")
    for failure in result.details.failures:
        print(f"  no estimate from {failure}")
    print(f"  pressure-tensor sampling took {100 * result.sampling_cost_fraction:.0f}% of the NVT wall time")
    if experiment is not None and experiment.viscosity_cP is not None:
        span = (f" (range {experiment.viscosity_range_cP[0]:g}-{experiment.viscosity_range_cP[1]:g})"
                if experiment.viscosity_range_cP else "")
        print(f"  experiment {experiment.viscosity_cP:g} cP{span} ({experiment.source})")
    for warning in result.warnings:
        print(f"  note: {warning}; its energy jumps at the cutoff add white noise to the finite-difference "
              "pressure tensor (small for GAFF at 1 nm, see properties/pressure.py; a switching function removes it)")
    print(f"data: {out / 'viscosity' / 'viscosity.json'}; plots: {', '.join(str(p) for p in plots.values())}")
    return 0
