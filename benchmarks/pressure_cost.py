"""What sampling the pressure tensor costs during MACE+CSO MD, per provider.

Builds an EC:EMC 3:7 (by mass) box of about ``--atoms`` atoms with :class:`CorrectedMACESystem`
(a random MACE of MACE-OFF23(S)'s architecture by default: cost depends on the architecture, not
on the weights), then times, interleaved over ``--rounds`` rounds on one platform:

- ``md_step``: one MD step (Verlet, 0.5 fs) of the full System;
- ``exact-mace``: one pressure-tensor sample by :class:`ExactMACEPressureTensor` (MACE's own strain
  derivative + a 12-point finite difference of the CSO group only);
- ``mace_virial``: the MACE part alone; ``cso_finite_difference``: the CSO part alone.

It prints the sampling cost as a share of MD time at sampling intervals of 1, 5, 10 and 20
steps: share = t_sample / (interval * t_step + t_sample). (The finite-difference provider cannot
evaluate a TorchForce at all: openmm-torch refuses autograd inside ``computeStressTensor``.)

Usage::

    python benchmarks/pressure_cost.py --atoms 1000 --json benchmarks/results/pressure_cost.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cso_cost import build_liquid  # noqa: E402
from md_throughput import machine_info  # noqa: E402


def timed(function, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=1000, help="approximate box size (atoms)")
    parser.add_argument("--platform", default="CPU")
    parser.add_argument("--cutoff-nm", type=float, default=1.0, help="CSO cutoff")
    parser.add_argument("--model", type=Path, default=None, help="MACE model file (default: random, MACE-OFF23(S)-sized)")
    parser.add_argument("--channels", type=int, default=96)
    parser.add_argument("--max-L", type=int, default=0)
    parser.add_argument("--r-max", type=float, default=4.5)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--steps", type=int, default=3, help="MD steps / samples per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import openmm
    import torch  # noqa: F401  - before openmmtorch

    from openmm_physembed import CorrectedMACESystem
    from openmm_physembed.properties.viscosity.pressure import ExactMACEPressureTensor

    box = build_liquid(args.atoms, seed=1)
    model_path = args.model
    if model_path is None:
        from openmm_physembed.testing import make_random_mace_model

        model_path = make_random_mace_model(Path(tempfile.mkdtemp(prefix="pressure_cost_")) / "random.model",
                                            atomic_numbers=(1, 6, 8), r_max_angstrom=args.r_max,
                                            num_channels=args.channels, max_L=args.max_L, correlation=3,
                                            num_interactions=2, dtype=args.dtype)
    corrected = CorrectedMACESystem(model_path, box.topology, box.positions_nm, alpha=0.05, a1=0.6,
                                    cutoff_nm=args.cutoff_nm, switch_distance_nm=args.cutoff_nm - 0.1,
                                    dtype=args.dtype)
    provider = ExactMACEPressureTensor()
    provider.prepare_system(corrected.system)
    context = openmm.Context(corrected.system, openmm.VerletIntegrator(0.0005),
                             openmm.Platform.getPlatformByName(args.platform))
    context.setPeriodicBoxVectors(*box.box_vectors_nm)
    context.setPositions(box.positions_nm)
    context.setVelocitiesToTemperature(298.0, 1)
    if args.platform in ("CPU", "Reference"):  # for this whole script, as MDEngine runs a TorchForce there
        from openmm_physembed.torch_device import set_torchscript_optimization

        set_torchscript_optimization(False)
    integrator = context.getIntegrator()
    integrator.step(2)  # warm-up: TorchScript profiling runs, neighbour lists

    def state():
        return context.getState(getPositions=True, getVelocities=True)

    provider.compute_bar(context, state())
    samples = {"md_step": [], "exact-mace": [], "mace_virial": [], "cso_finite_difference": []}
    for _ in range(args.rounds):
        samples["md_step"].append(timed(lambda: (integrator.step(1), context.getState(getEnergy=True)), args.steps))
        current = state()
        samples["exact-mace"].append(timed(lambda: provider.compute_bar(context, state()), args.steps))
        samples["mace_virial"].append(timed(lambda: provider.mace_virial_bar(current), args.steps))
        samples["cso_finite_difference"].append(timed(lambda: provider.rest.virial_bar(context, current), args.steps))
    median = {k: statistics.median(v) for k, v in samples.items()}
    shares = {n: median["exact-mace"] / (n * median["md_step"] + median["exact-mace"]) for n in (1, 5, 10, 20)}
    print(f"{corrected.system.getNumParticles()} atoms, {args.platform}, {args.dtype}:")
    for name, seconds in median.items():
        print(f"  {name:24s} {1e3 * seconds:9.1f} ms   ({seconds / median['md_step']:.2f} MD steps)")
    for n, share in shares.items():
        print(f"  sampling every {n:2d} steps: {100 * share:5.1f}% of the MD time")
    result = {"atoms": corrected.system.getNumParticles(), "platform": args.platform, "dtype": args.dtype,
              "model": str(args.model) if args.model else f"random MACE {args.channels} ch, L={args.max_L}, "
                                                          f"r_max {args.r_max} A",
              "median_seconds": median, "sampling_share": {str(k): v for k, v in shares.items()},
              "machine": machine_info(None)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
