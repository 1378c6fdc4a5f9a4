"""How much of the 800 K test ensemble lies outside each arm's training set, bond by bond and angle by angle.

A model extrapolates wherever the 800 K MD goes beyond the geometries it was trained on. This runs
GAFF MD of the molecule at the test temperature (a cheap stand-in for the 800 K ensemble a stable
model should sample) and, for every bond and every bonded angle, counts the fraction of its frames
outside the range that coordinate spans in each arm's training set. Reads the training sets of a
finished (or running) `physembed stability` run.

    python benchmarks/stability/coverage_800k.py runs/stability_benchmark_cpu/paracetamol paracetamol \
        --out benchmarks/results/stability/paracetamol/coverage_800k.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="out dir of `physembed stability` for one molecule")
    parser.add_argument("molecule", help="library name or SMILES")
    parser.add_argument("--temperature", type=float, default=800.0)
    parser.add_argument("--ps", type=float, default=200.0, help="GAFF MD length (frames every 0.1 ps)")
    parser.add_argument("--arms", nargs="+", default=["baseline=reference/frames.extxyz",
                                                      "augmented=augmentation/train.extxyz"],
                        help="NAME=training extxyz, relative to run_dir")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    from openmm_physembed.chem.gaff import parameterize
    from openmm_physembed.chem.molecule import Molecule
    from openmm_physembed.io import read_extxyz
    from openmm_physembed.sampling.geometry import angle_values_deg, bond_angles, bond_lengths
    from openmm_physembed.sampling.reference_md import (
        GasPhaseMDProtocol,
        run_gas_phase_md,
    )
    from openmm_physembed.simulation.dynamics import Dynamics
    from openmm_physembed.stability.explain import training_angle_ranges, training_bond_ranges

    run_dir = Path(args.run_dir)
    molecule = Molecule.from_any(args.molecule)
    params = parameterize(molecule, charge_method="bcc")
    types = params.atom_types
    bonds = np.array([(b.atom1, b.atom2) for b in params.bonds], dtype=int)
    angles = bond_angles(bonds)
    hot = run_gas_phase_md(molecule, run_dir / f"coverage_gaff_{args.temperature:g}K", GasPhaseMDProtocol(
        Dynamics(args.temperature, seed=7), n_steps=int(args.ps * 1000), frame_interval=100, n_frames=50),
        progress=True).all_positions_nm()
    hot_lengths = bond_lengths(hot, bonds) * 10.0
    hot_angles = angle_values_deg(hot, angles)

    report = {"molecule": molecule.name, "temperature_K": args.temperature, "gaff_ps": args.ps,
              "n_frames": int(len(hot)), "arms": {}}
    for spec in args.arms:
        name, rel = spec.split("=", 1)
        frames = np.array([a.get_positions() for a in read_extxyz(run_dir / rel)]) * 0.1  # A -> nm

        blow, bhigh = (r * 10.0 for r in training_bond_ranges(frames, bonds))
        alow, ahigh = training_angle_ranges(frames, angles)
        bond_out = (hot_lengths < blow) | (hot_lengths > bhigh)
        angle_out = (hot_angles < alow) | (hot_angles > ahigh)
        rows_b = [{"atoms": f"{i}-{j}", "types": f"{types[i]}-{types[j]}",
                   "training_A": [float(blow[n]), float(bhigh[n])],
                   "gaff_800K_A": [float(np.percentile(hot_lengths[:, n], 0.5)),
                                   float(np.percentile(hot_lengths[:, n], 99.5))],
                   "fraction_outside": float(bond_out[:, n].mean())} for n, (i, j) in enumerate(bonds)]
        rows_a = [{"atoms": f"{i}-{j}-{k}", "types": f"{types[i]}-{types[j]}-{types[k]}",
                   "training_deg": [float(alow[n]), float(ahigh[n])],
                   "gaff_800K_deg": [float(np.percentile(hot_angles[:, n], 0.5)),
                                     float(np.percentile(hot_angles[:, n], 99.5))],
                   "fraction_outside": float(angle_out[:, n].mean())} for n, (i, j, k) in enumerate(angles)]
        report["arms"][name] = {
            "n_training_frames": int(len(frames)),
            "frames_with_any_bond_outside": float(bond_out.any(axis=1).mean()),
            "frames_with_any_angle_outside": float(angle_out.any(axis=1).mean()),
            "mean_bonds_outside_per_frame": float(bond_out.sum(axis=1).mean()),
            "mean_angles_outside_per_frame": float(angle_out.sum(axis=1).mean()),
            "bonds": sorted(rows_b, key=lambda r: -r["fraction_outside"]),
            "angles": sorted(rows_a, key=lambda r: -r["fraction_outside"]),
        }
        arm = report["arms"][name]
        print(f"{name}: frames with a bond outside training {arm['frames_with_any_bond_outside']:.2f} "
              f"(mean {arm['mean_bonds_outside_per_frame']:.2f} bonds), with an angle outside "
              f"{arm['frames_with_any_angle_outside']:.2f} (mean {arm['mean_angles_outside_per_frame']:.2f} angles)")
        for row in arm["bonds"][:4]:
            print(f"   bond  {row['atoms']:>8} {row['types']:>9}: {row['fraction_outside']:.2f} outside "
                  f"{row['training_A'][0]:.3f}-{row['training_A'][1]:.3f} A (800 K: "
                  f"{row['gaff_800K_A'][0]:.3f}-{row['gaff_800K_A'][1]:.3f})")
        for row in arm["angles"][:6]:
            print(f"   angle {row['atoms']:>8} {row['types']:>12}: {row['fraction_outside']:.2f} outside "
                  f"{row['training_deg'][0]:.1f}-{row['training_deg'][1]:.1f} deg (800 K: "
                  f"{row['gaff_800K_deg'][0]:.1f}-{row['gaff_800K_deg'][1]:.1f})")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
