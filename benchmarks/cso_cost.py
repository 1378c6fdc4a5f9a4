"""What the intermolecular CSO correction costs next to the MACE step it corrects.

Builds an EC:EMC 3:7 (by mass) liquid box of about ``--atoms`` atoms, then times MD steps
(velocity Verlet, 0.5 fs, one force evaluation per step) of

- ``cso``: the CSO CustomNonbondedForce alone, as :func:`add_cso_correction` builds it
  (C6 table over classes, R0 folded into a per-particle factor, every intramolecular pair excluded);
- ``cso_no_derivatives``: the same without energy parameter derivatives (``parameter_derivatives=()``),
  for runs that do not need dE/da1;
- ``cso_builtin_lrc``: the same with OpenMM's own long-range correction switched on in the pair
  force instead of the separate one-pair correction force (OpenMM 8.6.1's CPU platform
  re-integrates it over all class pairs on every step);
- ``cso_two_tables``: the same term with R0 as a second Discrete2DFunction (the design the issue
  sketched), to show what folding saves;
- ``cso_no_exclusions``: the CSO kernel with no exclusions (wrong physics, intramolecular pairs
  included): what the ~20 000 exclusions of a 3000-atom box cost;
- ``mace``: the MACE TorchForce alone;
- ``mace+cso``: :class:`CorrectedMACESystem`, both together;

interleaved over ``--rounds`` rounds on one platform, and prints the medians and the ratio
CSO / MACE (the goal is < 5 %). The MACE model is a randomly initialised one with the
architecture of MACE-OFF23(S) by default (96 channels, L = 0, correlation 3, 2 interactions,
r_max 4.5 A): cost depends on the architecture, not on the weights. Pass ``--model`` to time a
real model file instead. Nothing is downloaded.

Usage::

    python benchmarks/cso_cost.py --atoms 3000 --platform CPU --json cso_cost.json
"""

from __future__ import annotations

import argparse
import os
import platform as host_platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build_liquid(n_atoms: int, seed: int):
    from openmm_physembed.chem.box import build_box
    from openmm_physembed.chem.molecule import Molecule

    molecules = [Molecule.from_name("ec"), Molecule.from_name("emc")]
    moles = [0.3 / molecules[0].mass_amu, 0.7 / molecules[1].mass_amu]  # per gram of a 3:7 mixture
    mean_atoms = (moles[0] * molecules[0].n_atoms + moles[1] * molecules[1].n_atoms) / sum(moles)
    n_molecules = max(2, int(round(n_atoms / mean_atoms)))
    return build_box(molecules, mass_fractions=(0.3, 0.7), n_molecules=n_molecules, density_g_cm3=1.1,
                     charge_method="gasteiger", seed=seed)


def bare_system(topology):
    import openmm

    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    return system


def cso_system(box, variant: str, cutoff_nm: float):
    import openmm

    from openmm_physembed.potentials.cso import (
        _pair_energy_expression,
        add_cso_correction,
        cso_parameters,
    )
    from openmm_physembed.units import BOHR_IN_NM

    system = bare_system(box.topology)
    parameters = cso_parameters(box.topology, box.positions_nm)
    if variant in ("cso", "cso_no_derivatives", "cso_builtin_lrc"):
        force = add_cso_correction(system, box.topology, parameters=parameters, alpha=0.05, a1=0.6,
                                   cutoff_nm=cutoff_nm, long_range_correction=variant != "cso_builtin_lrc",
                                   parameter_derivatives=("alpha", "a1") if variant != "cso_no_derivatives" else ())
        if variant == "cso_builtin_lrc":
            force.setUseLongRangeCorrection(True)
        return system
    k = parameters.n_classes
    if variant == "cso_two_tables":
        force = openmm.CustomNonbondedForce(
            _pair_energy_expression(6.25 * BOHR_IN_NM, f"2.5*cso_r0(cls1, cls2)*{1.0 / BOHR_IN_NM!r}",
                                    "cso_c6(cls1, cls2)"))
        force.addTabulatedFunction("cso_r0", openmm.Discrete2DFunction(k, k, parameters.r0_nm.T.ravel().tolist()))
        exclude = True
    elif variant == "cso_no_exclusions":
        force = openmm.CustomNonbondedForce(
            _pair_energy_expression(6.25 * BOHR_IN_NM, "b1*b2", "cso_c6(cls1, cls2)"))
        exclude = False
    else:
        raise ValueError(variant)
    force.addTabulatedFunction("cso_c6", openmm.Discrete2DFunction(k, k, parameters.c6_kj_mol_nm6.T.ravel().tolist()))
    for name, value in (("alpha", 0.05), ("a1", 0.6), ("s6", 1.0)):
        force.addGlobalParameter(name, value)
    for name in ("alpha", "a1"):
        force.addEnergyParameterDerivative(name)
    force.addPerParticleParameter("cls")
    force.addPerParticleParameter("b")
    b = np.sqrt(2.5 * np.diag(parameters.r0_nm) / BOHR_IN_NM)
    for c in parameters.atom_class:
        force.addParticle([float(c), float(b[c])])
    if exclude:
        for i, j in sorted(parameters.intramolecular_pairs()):
            force.addExclusion(i, j)
    force.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
    force.setCutoffDistance(cutoff_nm)
    system.addForce(force)  # pair kernel only: these variants compare kernels, not corrections
    return system


def mace_system(box, model_path: Path, dtype: str, with_cso: bool, cutoff_nm: float):
    if with_cso:
        from openmm_physembed.potentials.corrected_system import CorrectedMACESystem

        return CorrectedMACESystem(model_path, box.topology, box.positions_nm, alpha=0.05, a1=0.6,
                                   cutoff_nm=cutoff_nm, dtype=dtype).system
    from openmm_physembed.potentials.mace_force import add_mace_force

    system = bare_system(box.topology)
    add_mace_force(system, box.topology, model_path, dtype=dtype)
    return system


def make_context(system, box, platform_name: str, threads: int | None):
    import openmm

    platform = openmm.Platform.getPlatformByName(platform_name)
    properties = {}
    if threads and platform_name == "CPU":
        properties["Threads"] = str(threads)
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005), platform, properties)
    context.setPeriodicBoxVectors(*box.box_vectors_nm)
    context.setPositions(box.positions_nm)
    context.setVelocitiesToTemperature(298.0, 1)
    return context


def time_steps(context, steps: int) -> float:
    """Seconds per MD step; the state read at the end forces GPU platforms to finish."""
    start = time.perf_counter()
    context.getIntegrator().step(steps)
    context.getState(getEnergy=True)
    return (time.perf_counter() - start) / steps


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=3000, help="approximate box size (atoms)")
    parser.add_argument("--platform", default="CPU", help="OpenMM platform (CPU, CUDA, OpenCL, Reference)")
    parser.add_argument("--threads", type=int, default=None, help="CPU platform threads (default OpenMM's)")
    parser.add_argument("--cutoff-nm", type=float, default=1.2)
    parser.add_argument("--model", type=Path, default=None,
                        help="a MACE model file (default: random MACE-OFF23(S)-sized)")
    parser.add_argument("--channels", type=int, default=96)
    parser.add_argument("--max-L", type=int, default=0)
    parser.add_argument("--correlation", type=int, default=3)
    parser.add_argument("--r-max", type=float, default=4.5, help="MACE cutoff, Angstrom")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--cso-steps", type=int, default=50)
    parser.add_argument("--mace-steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-mace", action="store_true", help="time only the CSO variants")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    import openmm
    import torch  # noqa: F401  - before openmmtorch, which the MACE force loads

    box = build_liquid(args.atoms, args.seed)
    variants = ("cso", "cso_no_derivatives", "cso_builtin_lrc", "cso_two_tables", "cso_no_exclusions")
    systems = {v: cso_system(box, v, args.cutoff_nm) for v in variants}
    steps = {v: args.cso_steps for v in systems}
    model_note = None
    if not args.skip_mace:
        model_path = args.model
        if model_path is None:
            from openmm_physembed.testing import make_random_mace_model

            model_path = Path(tempfile.mkdtemp(prefix="cso_cost_")) / "random_mace.model"
            make_random_mace_model(model_path, atomic_numbers=(1, 6, 8), r_max_angstrom=args.r_max,
                                   num_channels=args.channels, max_L=args.max_L, correlation=args.correlation,
                                   num_interactions=2, dtype=args.dtype)
            model_note = (f"random ScaleShiftMACE, {args.channels} channels, max_L {args.max_L}, "
                          f"correlation {args.correlation}, 2 interactions, r_max {args.r_max} A, {args.dtype}")
        else:
            model_note = str(model_path)
        systems["mace"] = mace_system(box, model_path, args.dtype, False, args.cutoff_nm)
        systems["mace+cso"] = mace_system(box, model_path, args.dtype, True, args.cutoff_nm)
        steps["mace"] = steps["mace+cso"] = args.mace_steps

    if args.platform in ("CPU", "Reference"):  # for this whole script, as MDEngine runs a TorchForce there
        from openmm_physembed.torch_device import set_torchscript_optimization

        set_torchscript_optimization(False)
    contexts = {name: make_context(system, box, args.platform, args.threads) for name, system in systems.items()}
    for name, context in contexts.items():  # warm-up: neighbour lists, TorchScript profiling runs
        context.getIntegrator().step(2)
    samples: dict[str, list[float]] = {name: [] for name in contexts}
    for _ in range(args.rounds):
        for name, context in contexts.items():
            samples[name].append(time_steps(context, steps[name]))
    median_ms = {name: 1000.0 * statistics.median(values) for name, values in samples.items()}

    result = {
        "n_atoms": box.n_atoms,
        "box_edge_nm": box.box_edge_nm,
        "cutoff_nm": args.cutoff_nm,
        "platform": args.platform,
        "threads": args.threads,
        "model": model_note,
        "ms_per_step": median_ms,
        "samples_ms": {k: [1000.0 * x for x in v] for k, v in samples.items()},
        "machine": {"python": sys.version.split()[0], "openmm": openmm.__version__,
                    "cpu": host_platform.processor() or host_platform.machine(), "cpu_count": os.cpu_count()},
    }
    if "mace" in median_ms:
        result["cso_over_mace"] = median_ms["cso"] / median_ms["mace"]
        result["corrected_over_mace_minus_1"] = median_ms["mace+cso"] / median_ms["mace"] - 1.0

    print(f"{box.n_atoms} atoms, box {box.box_edge_nm:.3f} nm, CSO cutoff {args.cutoff_nm} nm, platform "
          f"{args.platform}, OpenMM {openmm.__version__}, {os.cpu_count()} CPUs (shared: timings are noisy)")
    if model_note:
        print(f"MACE model: {model_note}")
    print(f"{'variant':<20}{'ms/step':>12}   rounds")
    for name, value in median_ms.items():
        print(f"{name:<20}{value:>12.1f}   " + " ".join(f"{1000 * x:.1f}" for x in samples[name]))
    if "mace" in median_ms:
        print(f"CSO / MACE step: {100 * result['cso_over_mace']:.2f} %   "
              f"(MACE+CSO) / MACE - 1: {100 * result['corrected_over_mace_minus_1']:.2f} %   (goal < 5 %)")
    if args.json:
        from openmm_physembed.io import write_json

        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
