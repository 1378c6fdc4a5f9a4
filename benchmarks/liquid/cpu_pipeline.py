"""A liquid MLFF made by the toolkit alone, on 2 CPU cores: the documented command sequence, timed.

1. ``physembed liquid-dataset --experiment "EC:EMC 3:7" --n-molecules 12``: GAFF NPT of a
   ~160-atom box, frames + rigid-volume scans, periodic GFN2-xTB labels with stress (tblite);
2. ``physembed train --preset cpu-liquid``: MACE with stress in the loss and SWA from 75 %;
3. ``physembed volume-scan``: the paper's Fig. 5 check, force RMSE on the held-out rigid-volume
   scans with and without a CSO correction (here the published MACE-EC/EMC pair alpha = 0.05,
   a1 = 0.6: what matters is the size of the change, not the pair's fit to this model);
4. ``physembed density`` of EMC with the trained model as base (TorchForce + CSO + Monte Carlo
   barostat) at the smallest legal box: the MLFF NPT smoke run, steps/s and a density with its
   error, uncorrected and corrected.

Every step is resumable (rerun this script to continue). Results go to
``benchmarks/results/liquid/`` (``summary.json`` and the plots). Usage::

    python benchmarks/liquid/cpu_pipeline.py [--out runs/liquid] [--smoke-steps 2000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from openmm_physembed.cli import main as physembed

RESULTS = Path(__file__).resolve().parents[1] / "results" / "liquid"
# The published pair for MACE-EC/EMC (paper, Table 1), used here only to size the correction's effect.
PUBLISHED_ALPHA, PUBLISHED_A1 = 0.05, 0.6


def run(command: list[str], timings: dict, name: str) -> None:
    print("\n$ physembed " + " ".join(f"'{c}'" if " " in c else c for c in command), flush=True)
    started = time.perf_counter()
    code = physembed(command)
    if code != 0:
        raise SystemExit(f"physembed {command[0]} failed (exit {code}); rerun this script to resume")
    timings[name] = time.perf_counter() - started


def time_smoke_step(model: str, n_molecules: int) -> dict:
    """Seconds per MACE+CSO NPT step of the smoke box, corrected, timed apart from setup and compile."""
    from openmm_physembed.properties.density.npt import NPTProtocol
    from openmm_physembed.properties.density.wall_time import time_npt_step
    from openmm_physembed.properties.experimental import lookup
    from openmm_physembed.properties.liquid import LiquidSpec, build_liquid_setup

    spec = LiquidSpec.from_experiment(lookup("EMC", 298.15), n_molecules)
    setup = build_liquid_setup(spec, model_path=model, alpha=PUBLISHED_ALPHA, a1=PUBLISHED_A1, cso_cutoff_nm=0.55,
                               dtype="float32")
    seconds, platform = time_npt_step(setup, NPTProtocol(), {"alpha": PUBLISHED_ALPHA, "a1": PUBLISHED_A1},
                                      n_steps=30)
    n_atoms = len(setup.positions_nm)
    return {"seconds_per_step": seconds, "steps_per_second": 1.0 / seconds, "platform": platform,
            "n_atoms": n_atoms, "ms_per_atom_step": 1e3 * seconds / n_atoms,
            "paper_fit_a1_estimate": "1 ns per a1 point at this rate: "
                                     f"{seconds * 1e6 / 86400:.1f} days per point for {n_atoms} atoms"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/liquid")
    parser.add_argument("--n-molecules", type=int, default=12)
    parser.add_argument("--smoke-molecules", type=int, default=12, help="EMC molecules in the NPT smoke run")
    parser.add_argument("--smoke-steps", type=int, default=2000)
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    out, results = Path(args.out), Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    dataset, model_dir = out / "ecemc_dataset", out / "model"
    timings: dict[str, float] = {}

    run(["liquid-dataset", "--experiment", "EC:EMC 3:7", "--n-molecules", str(args.n_molecules), "-o", str(dataset)],
        timings, "dataset_call_s")
    run(["train", "--preset", "cpu-liquid", "--train", str(dataset / "train.extxyz"), "--valid",
         str(dataset / "valid.extxyz"), "-o", str(model_dir), "--seeds", "0", "--device", "cpu"],
        timings, "training_call_s")
    trained = json.loads((model_dir / "seed_0" / "result.json").read_text())
    model = trained["model_path"]
    scan_dir = out / "volume_scan"
    run(["volume-scan", "--model", model, "--dataset", str(dataset), "--alpha", str(PUBLISHED_ALPHA),
         "--a1", str(PUBLISHED_A1), "-o", str(scan_dir)], timings, "volume_scan_call_s")

    smoke = {}
    # MACE r_max is 0.5 nm, so a 12-molecule EMC box (~1.2 nm) is the smallest legal one; the CSO
    # cutoff must stay below half of it (long-range correction beyond).
    for label, correction in (("uncorrected", []), ("corrected", ["--alpha", str(PUBLISHED_ALPHA),
                                                                  "--a1", str(PUBLISHED_A1)])):
        run_dir = out / f"smoke_npt_{label}"
        run(["density", "--experiment", "EMC", "--n-molecules", str(args.smoke_molecules), "--model", model,
             *correction, "--cso-cutoff", "0.55", "--steps", str(args.smoke_steps), "--report-interval", "10",
             "--average-last-ps", str(0.75 * args.smoke_steps * 1e-3), "--dtype", "float32", "-o", str(run_dir)],
            timings, f"smoke_{label}_call_s")
        density = json.loads((run_dir / "density.json").read_text())
        smoke[label] = {"density_g_cm3": density["density_g_cm3"], "parameters": density["parameters"],
                        "steps": args.smoke_steps, "directory": str(run_dir)}
        shutil.copy(run_dir / "density.png", results / f"smoke_npt_{label}.png")

    smoke["seconds_per_step"] = time_smoke_step(model, args.smoke_molecules)
    manifest = json.loads((dataset / "dataset.json").read_text())
    scan = json.loads((scan_dir / "volume_scan.json").read_text())
    for name in ("density_coverage.png",):
        shutil.copy(dataset / name, results / name)
    shutil.copy(scan_dir / "volume_scan.png", results / "volume_scan.png")
    shutil.copy(Path(trained["learning_curve_png"]), results / "learning_curve.png")
    previous = json.loads((results / "summary.json").read_text()) if (results / "summary.json").is_file() else {}
    summary = {
        "machine": "2 CPU cores, no GPU",
        "dataset": {k: manifest[k] for k in ("components", "counts", "n_atoms", "sizes", "npt_density_g_cm3",
                                             "npt_seconds", "label_seconds",
                                             "label_seconds_per_structure_wall")},
        "training": {k: trained[k] for k in ("preset", "n_epochs", "valid_energy_rmse_mev_per_atom",
                                             "valid_forces_rmse_mev_per_angstrom",
                                             "valid_stress_rmse_mev_per_angstrom3",
                                             "train_energy_rmse_mev_per_atom", "train_forces_rmse_mev_per_angstrom",
                                             "train_stress_rmse_mev_per_angstrom3")},
        "fig5_volume_scan": {k: scan[k] for k in ("n_structures", "table", "force_rmse_mev_per_angstrom",
                                                  "force_rmse_change_mev_per_angstrom", "energy_rmse_mev_per_atom",
                                                  "correction", "cso_cutoff_nm")},
        "smoke_npt": smoke,
        # A resumed call times only what it ran; keep the first, complete timings.
        "wall_seconds": {**timings, **previous.get("wall_seconds", {})},
    }
    (results / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nsummary -> {results / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
