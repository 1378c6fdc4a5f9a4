"""The paper's Fig. 5 check: does the CSO correction spoil what the MLFF already gets right?

On a rigid-volume scan test set (``physembed liquid-dataset`` writes one: boxes scaled by a few
per cent, molecules moved rigidly) the MACE model is evaluated with the correction off and on,
in the same OpenMM System the density runs use (TorchForce + CSO). Reported per scale factor and
overall: the force RMSE against the reference labels (published: the correction changes it by
< 0.8 meV/A) and the energy along each scan relative to its unscaled frame, whose slope is what
the correction is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...chem.residues import read_pdb_topology
from ...errors import PropertyError
from ...io import read_extxyz, write_json
from ...units import ANGSTROM_PER_NM, EV_PER_KJ_PER_MOL

# Files of earlier versions named dimethyl and diethyl carbonate DC, whose bonds OpenMM's reader
# replaces; rerunning the dataset command rewrites the file and recomputes nothing else.
REGENERATE_TOPOLOGY = ("regenerate it: rerun the same `physembed liquid-dataset` command (it resumes and rewrites "
                       "topology.pdb), or write it with LiquidBox.write_pdb")

# Leave the smallest scanned box some room over twice the CSO cutoff (the long-range correction
# covers the rest).
_CUTOFF_FRACTION_OF_EDGE = 0.45


@dataclass(frozen=True)
class VolumeScanResult:
    table: list  # one row per scale factor
    force_rmse_mev_per_angstrom: dict  # "uncorrected", "corrected" -> all test structures
    force_rmse_change_mev_per_angstrom: float
    energy_rmse_mev_per_atom: dict  # of E(s) - E(1) along each scan
    cso_cutoff_nm: float
    correction: dict
    json_path: Path | None = None
    plot_path: Path | None = None


def evaluate_volume_scan(model_path: str | Path, scan_path: str | Path, topology_pdb: str | Path,
                         correction, out_dir: str | Path | None = None, dtype: str | None = None,
                         platform: str | None = None) -> VolumeScanResult:
    """MACE without and with ``correction`` (a :class:`~..potentials.correction_choice.CSOCorrection`)
    on every structure of ``scan_path`` (labelled extxyz with ``scale_factor`` and
    ``source_step`` in each structure's info)."""
    import openmm
    from openmm import unit

    from ...potentials.corrected_system import CorrectedMACESystem
    from ...simulation.contexts import make_simulation

    structures = _read_scan(scan_path)
    topology = read_pdb_topology(topology_pdb, PropertyError, fix=REGENERATE_TOPOLOGY)
    if topology.getNumAtoms() != len(structures[0]):
        raise PropertyError(f"{topology_pdb} has {topology.getNumAtoms()} atoms, the scan structures "
                            f"{len(structures[0])}: not the same box")
    smallest_edge_nm = min(np.linalg.norm(a.cell.array, axis=1).min() for a in structures) / ANGSTROM_PER_NM
    cutoff_nm = float(np.floor(_CUTOFF_FRACTION_OF_EDGE * smallest_edge_nm * 100.0) / 100.0)
    first = structures[0]
    topology.setPeriodicBoxVectors([openmm.Vec3(*row) for row in first.cell.array / ANGSTROM_PER_NM]
                                   * unit.nanometer)
    corrected = CorrectedMACESystem(model_path, topology, first.positions / ANGSTROM_PER_NM,
                                    alpha=correction.alpha, a1=correction.a1, s6=correction.s6, cutoff_nm=cutoff_nm,
                                    dtype=dtype, parameter_derivatives=())
    simulation = make_simulation(corrected.system, topology, first.positions / ANGSTROM_PER_NM,
                                 openmm.VerletIntegrator(1e-3), platform)
    context = simulation.context

    def evaluate(atoms, alpha: float) -> tuple[float, np.ndarray]:
        context.setParameter("alpha", alpha)
        context.setPeriodicBoxVectors(*(atoms.cell.array / ANGSTROM_PER_NM))
        context.setPositions(atoms.positions / ANGSTROM_PER_NM)
        state = context.getState(getEnergy=True, getForces=True)
        energy_ev = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) * EV_PER_KJ_PER_MOL
        forces = (state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
                  * EV_PER_KJ_PER_MOL / ANGSTROM_PER_NM)  # eV/A
        return energy_ev, forces

    rows = []
    for atoms in structures:
        e_off, f_off = evaluate(atoms, 0.0)
        e_on, f_on = evaluate(atoms, correction.alpha)
        rows.append({"factor": float(atoms.info["scale_factor"]), "source": int(atoms.info["source_step"]),
                     "n_atoms": len(atoms), "e_ref": float(atoms.info["REF_energy"]), "e_off": e_off,
                     "e_on": e_on, "f_ref": np.asarray(atoms.arrays["REF_forces"]), "f_off": f_off, "f_on": f_on})
    result = _summarise(rows, cutoff_nm, correction)
    if out_dir is not None:
        out_dir = Path(out_dir)
        json_path = write_json(out_dir / "volume_scan.json", {
            "model": str(model_path), "scan": str(scan_path), "n_structures": len(rows),
            "table": result.table, "force_rmse_mev_per_angstrom": result.force_rmse_mev_per_angstrom,
            "force_rmse_change_mev_per_angstrom": result.force_rmse_change_mev_per_angstrom,
            "energy_rmse_mev_per_atom": result.energy_rmse_mev_per_atom, "cso_cutoff_nm": cutoff_nm,
            "correction": result.correction, "published_force_rmse_change_mev_per_angstrom": "< 0.8",
            "energies": "E(s) - E(1) of the same source frame, per atom",
        })
        plot_path = _plot(result, out_dir / "volume_scan.png")
        result = VolumeScanResult(**{**result.__dict__, "json_path": json_path, "plot_path": plot_path})
    return result


def _read_scan(path) -> list:
    path = Path(path)
    if not path.is_file():
        raise PropertyError(f"scan file {path} does not exist (physembed liquid-dataset writes test_scan.extxyz)")
    structures = read_extxyz(path)
    needed = ("scale_factor", "source_step", "REF_energy")
    for index, atoms in enumerate(structures):
        missing = [k for k in needed if k not in atoms.info] + ([] if "REF_forces" in atoms.arrays else ["REF_forces"])
        if missing or not all(atoms.pbc):
            raise PropertyError(f"{path} structure {index} is not a labelled periodic scan structure "
                                f"(missing {missing or 'pbc'}); make one with physembed liquid-dataset")
    parts = list(dict.fromkeys(a.info["part"] for a in structures if "part" in a.info))
    if len(parts) > 1:  # a combined liquid-dataset: one topology per part, none for the mixture
        raise PropertyError(f"{path} mixes the scan sets of {len(parts)} liquids ({', '.join(parts)}); check one "
                            f"at a time: --dataset {path.parent / 'parts' / parts[0]} (and so on)")
    return structures


def _rmse(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(np.sqrt(np.mean(values**2)))


def _summarise(rows: list, cutoff_nm: float, correction) -> VolumeScanResult:
    unscaled = {r["source"]: r for r in rows if np.isclose(r["factor"], 1.0)}
    if not unscaled:
        raise PropertyError("the scan set has no unscaled (factor 1) structure to measure energies from")
    for row in rows:
        base = unscaled.get(row["source"])
        if base is None:
            raise PropertyError(f"scan of step {row['source']} has no unscaled structure")
        for key in ("ref", "off", "on"):
            row[f"de_{key}"] = 1e3 * (row[f"e_{key}"] - base[f"e_{key}"]) / row["n_atoms"]  # meV/atom
    factors = sorted({round(r["factor"], 6) for r in rows})
    table = []
    for factor in factors:
        group = [r for r in rows if np.isclose(r["factor"], factor)]
        force_errors = {k: np.concatenate([(r[f"f_{k}"] - r["f_ref"]).ravel() for r in group]) for k in ("off", "on")}
        table.append({
            "factor": factor, "volume_ratio": factor**3, "n": len(group),
            "de_ref_mev_per_atom": float(np.mean([r["de_ref"] for r in group])),
            "de_uncorrected_mev_per_atom": float(np.mean([r["de_off"] for r in group])),
            "de_corrected_mev_per_atom": float(np.mean([r["de_on"] for r in group])),
            "force_rmse_uncorrected_mev_per_angstrom": 1e3 * _rmse(force_errors["off"]),
            "force_rmse_corrected_mev_per_angstrom": 1e3 * _rmse(force_errors["on"]),
        })
    all_errors = {k: np.concatenate([(r[f"f_{k}"] - r["f_ref"]).ravel() for r in rows]) for k in ("off", "on")}
    force_rmse = {"uncorrected": 1e3 * _rmse(all_errors["off"]), "corrected": 1e3 * _rmse(all_errors["on"])}
    energy_rmse = {"uncorrected": _rmse([r["de_off"] - r["de_ref"] for r in rows]),
                   "corrected": _rmse([r["de_on"] - r["de_ref"] for r in rows])}
    return VolumeScanResult(table, force_rmse, force_rmse["corrected"] - force_rmse["uncorrected"], energy_rmse,
                            cutoff_nm, {"alpha": correction.alpha, "a1": correction.a1, "s6": correction.s6,
                                        "source": correction.source})


def format_table(result: VolumeScanResult) -> str:
    lines = [f"{'s':>6} {'V/V0':>6} {'n':>3} {'dE ref':>9} {'dE MACE':>9} {'dE +CSO':>9} "
             f"{'F RMSE':>8} {'F +CSO':>8}   (dE: meV/atom vs s = 1; F: meV/A)"]
    for row in result.table:
        lines.append(f"{row['factor']:>6.3f} {row['volume_ratio']:>6.3f} {row['n']:>3d} "
                     f"{row['de_ref_mev_per_atom']:>9.2f} {row['de_uncorrected_mev_per_atom']:>9.2f} "
                     f"{row['de_corrected_mev_per_atom']:>9.2f} "
                     f"{row['force_rmse_uncorrected_mev_per_angstrom']:>8.2f} "
                     f"{row['force_rmse_corrected_mev_per_angstrom']:>8.2f}")
    f, e = result.force_rmse_mev_per_angstrom, result.energy_rmse_mev_per_atom
    lines.append(f"all: force RMSE {f['uncorrected']:.2f} -> {f['corrected']:.2f} meV/A "
                 f"(change {result.force_rmse_change_mev_per_angstrom:+.3f}; published < 0.8); "
                 f"scan-energy RMSE {e['uncorrected']:.2f} -> {e['corrected']:.2f} meV/atom")
    return "\n".join(lines)


def _plot(result: VolumeScanResult, path: Path) -> Path:
    from ...plotting import pyplot, save_figure

    plt = pyplot()
    table = result.table
    volume = [r["volume_ratio"] for r in table]
    fig, (energy, force) = plt.subplots(1, 2, figsize=(10, 4))
    energy.plot(volume, [r["de_ref_mev_per_atom"] for r in table], "ko-", label="GFN2-xTB")
    energy.plot(volume, [r["de_uncorrected_mev_per_atom"] for r in table], "s--", color="tab:blue", label="MACE")
    energy.plot(volume, [r["de_corrected_mev_per_atom"] for r in table], "^:", color="k", label="MACE + CSO")
    energy.set_xlabel("V / V$_0$ (rigid molecules)")
    energy.set_ylabel("E(V) - E(V$_0$) (meV/atom)")
    energy.legend()
    force.plot(volume, [r["force_rmse_uncorrected_mev_per_angstrom"] for r in table], "s--", color="tab:blue",
               label="MACE")
    force.plot(volume, [r["force_rmse_corrected_mev_per_angstrom"] for r in table], "^:", color="k",
               label="MACE + CSO")
    force.set_xlabel("V / V$_0$ (rigid molecules)")
    force.set_ylabel("force RMSE (meV/$\\AA$)")
    force.set_title(f"change {result.force_rmse_change_mev_per_angstrom:+.2f} meV/$\\AA$ (published < 0.8)")
    force.legend()
    return save_figure(fig, path)
