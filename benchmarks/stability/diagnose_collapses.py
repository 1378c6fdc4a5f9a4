"""Why did the augmented models collapse? Bond-stretch scans of every augmented collapse.

For a finished stability run (``physembed stability MOLECULE --preset cpu -o DIR``) this takes each
collapse of the augmented arm, the last intact frame before it (saved by the MD), and stretches the
bond that broke, from 0.1 A below its GAFF r0 to 0.8 A above, with every trained model of both arms
and with GFN2-xTB (the labels' reference). For each curve it reports the barrier the model puts on
breaking that bond (the first maximum beyond r0) and where it lies, against the bond's stretch range
in the augmented training set. Writes ``OUT/collapse_scans.json`` and one plot per collapse.

Usage::

    python benchmarks/stability/diagnose_collapses.py runs/stability_benchmark_cpu/paracetamol \\
        --out benchmarks/results/stability/paracetamol
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def barrier(lengths: np.ndarray, energies: np.ndarray, r0: float) -> dict:
    """First local maximum of the curve beyond r0: where breaking the bond stops costing energy."""
    beyond = np.flatnonzero(lengths > r0)
    for k in beyond[1:-1]:
        if np.isfinite(energies[k]) and energies[k] >= energies[k - 1] and energies[k] > energies[k + 1]:
            return {"at_angstrom": float(lengths[k]), "height_ev": float(energies[k])}
    return {"at_angstrom": None, "height_ev": None}  # still rising at the end of the scan


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="default RUN_DIR/diagnosis")
    # --method: the option's name before the stability code said "arm".
    parser.add_argument("--arm", "--method", dest="arm", default="augmented", help="arm whose collapses are scanned")
    parser.add_argument("--step", type=float, default=0.05, help="scan step (A)")
    parser.add_argument("--max-scans", type=int, default=None, help="scan only the first N collapses")
    args = parser.parse_args(argv)

    from openmm_physembed import Molecule
    from openmm_physembed.chem.gaff import parameterize
    from openmm_physembed.io import write_json
    from openmm_physembed.stability.bond_scan import plot_scan, scan_bond
    from openmm_physembed.stability.replica_md import load_collapse_frames
    from openmm_physembed.stability.report import record_arm

    report = json.loads((args.run_dir / "stability_report.json").read_text())
    molecule = Molecule.from_smiles(report["smiles"], name=report["molecule"])
    params = parameterize(molecule, charge_method=report["protocol"]["charge_method"])
    bonds = np.array([(b.atom1, b.atom2) for b in params.bonds], dtype=int)
    models = {f"{m} seed {t['seed']}": t["model_path"] for m, ts in report["models"].items() for t in ts}
    out = args.out or args.run_dir / "diagnosis"
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for entry in report["collapses"]:
        arm = record_arm(entry)  # reports written before the rename say "method"
        if arm != args.arm or "bond" not in entry:
            continue
        if args.max_scans is not None and len(results) >= args.max_scans:
            break
        frames = load_collapse_frames(args.run_dir / "md" / arm / f"seed_{entry['seed']}")
        if entry["start"] not in frames:
            continue
        intact_nm = frames[entry["start"]][0]
        record = next(r for r in report["trajectories"] if record_arm(r) == arm
                      and r["seed"] == entry["seed"] and r["start"] == entry["start"])
        i, j = record["atoms"]
        r0 = entry["bond"]["r0_A"]
        lengths = np.arange(r0 - 0.1, r0 + 0.8 + 1e-9, args.step)
        scan = scan_bond(molecule.atomic_numbers, 10 * intact_nm, bonds, i, j, lengths, models)
        barriers = {name: barrier(lengths, e, r0) for name, e in scan.energies_ev.items()}
        name = f"{arm}_seed{entry['seed']}_start{entry['start']}"
        trained = entry["bond"]["training_range_A"].get("augmented")
        plot = plot_scan(scan, out / f"scan_{name}.png",
                         title=f"{report['molecule']}: {entry['bond']['atoms']} ({entry['bond']['gaff_types']}), "
                               f"{arm} seed {entry['seed']} collapsed at {entry['collapse_time_ps']:.2f} ps",
                         training_range_angstrom=trained, r0_angstrom=r0)
        results.append({"collapse": entry, "scan": scan.as_dict(), "barriers": barriers, "plot": str(plot)})
        # Written after every scan: each one takes minutes (xTB SCF retries at long stretch).
        write_json(out / "collapse_scans.json", {"molecule": report["molecule"], "arm": args.arm,
                                                "scans": results})
        print(f"{name}: {entry['bond']['atoms']} ({entry['bond']['gaff_types']}); augmented training range "
              f"{trained[0]:.2f}-{trained[1]:.2f} A")
        for curve, b in barriers.items():
            where = "still rising at the scan end" if b["at_angstrom"] is None else \
                f"barrier {b['height_ev']:.2f} eV at {b['at_angstrom']:.2f} A"
            print(f"    {curve:<18} {where}")
    write_json(out / "collapse_scans.json", {"molecule": report["molecule"], "arm": args.arm,
                                            "scans": results})
    print(f"wrote {out / 'collapse_scans.json'}")
    return {"scans": results}


if __name__ == "__main__":
    main()
