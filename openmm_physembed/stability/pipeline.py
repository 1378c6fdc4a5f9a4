"""The whole stability experiment for one molecule, stage by stage, resumable at every stage.

reference GAFF MD -> bond-length sampling -> GFN2-xTB labels -> MACE (baseline and augmented,
several seeds) -> batched 800 K MD of random GAFF structures with every model -> report + plots.

Each stage writes into its own folder and is skipped (or continued) when rerun with the same
command: the reference MD and the replica MD resume from checkpoints, augmentation and labelling
reuse finished files and per-structure caches, training skips finished seeds.
"""

from __future__ import annotations

import time
import warnings
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..chem.gaff import parameterize
from ..chem.molecule import Molecule
from ..errors import StabilityError
from ..io import read_extxyz, read_json, write_json
from .protocol import StabilityProtocol
from .replica_md import ReplicaMDSettings, run_replica_stability
from .report import ARMS, record_arm, summarize


def __getattr__(name: str):
    if name == "METHODS":
        warnings.warn("stability.pipeline.METHODS is deprecated; use stability.report.ARMS", DeprecationWarning,
                      stacklevel=2)
        return ARMS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class StabilityResult:
    molecule: str
    out_dir: Path
    report_path: Path
    summaries: dict  # arm -> ArmSummary dict
    plots: dict  # name -> PNG path
    wall_s: float
    comparison: dict = None  # rate ratio, p-value, log-rank (augmented vs baseline)
    per_seed: dict = None  # arm -> seed -> hazard
    collapses: list = None  # every collapse explained (explain.explain_collapse)

    def text(self) -> str:
        from .report import format_report

        return format_report(self.molecule, self.summaries, self.comparison, self.per_seed)


def run_stability(molecule: Molecule, out_dir: str | Path, protocol: StabilityProtocol = StabilityProtocol(),
                  executor: Executor | None = None, progress: bool = True, md_platform: str | None = None,
                  log=print) -> StabilityResult:
    """Run (or resume) the stability benchmark of one molecule; returns the summary and file paths.

    ``protocol`` defaults to the published one (GPU-sized); ``get_protocol("quick")`` and
    ``get_protocol("cpu")`` are the CPU-sized presets. The test MD runs on ``protocol.test_md.platform``;
    ``md_platform`` is deprecated (set that field with :func:`dataclasses.replace`).
    """
    if md_platform is not None:
        warnings.warn("run_stability(md_platform=...) is deprecated; set the protocol's test_md.platform: "
                      "replace(protocol, test_md=replace(protocol.test_md, platform=...))", DeprecationWarning,
                      stacklevel=2)
        protocol = replace(protocol, test_md=replace(protocol.test_md, platform=md_platform))
    from ..labelling.labeller import label_structures
    from ..sampling.angle_sampling import AngleSamplingParameters
    from ..sampling.augment import run_augmentation
    from ..sampling.bond_parameters import BondSamplingParameters
    from ..sampling.reference_md import GasPhaseMDProtocol, run_gas_phase_md
    from ..training.mace_train import train_mace

    out = Path(out_dir)
    wall = {}
    started = time.perf_counter()
    if protocol.n_validation >= protocol.n_frames:
        raise StabilityError("n_validation must be smaller than n_frames")

    # 1. GAFF reference MD and the frames kept for training.
    t0 = time.perf_counter()
    reference = run_gas_phase_md(molecule, out / "reference", GasPhaseMDProtocol(
        protocol.reference_md, n_steps=protocol.reference_steps, frame_interval=protocol.frame_interval,
        n_frames=protocol.n_frames, charge_method=protocol.charge_method), progress=progress)
    wall["reference_md_s"] = time.perf_counter() - t0
    log(f"[1/5] reference: {len(reference.selected)} GAFF frames ({protocol.reference_ps:g} ps at "
        f"{protocol.reference_md.temperature_K:g} K)")

    # 2. Self-adaptive bond-length sampling: the augmented training set and the plain validation frames.
    t0 = time.perf_counter()
    angles = AngleSamplingParameters(angles_per_structure=protocol.angles_per_structure,
                                     temperature_K=protocol.temperature_K)
    augmentation = run_augmentation(molecule, reference.frames_path, out / "augmentation",
                                    BondSamplingParameters(n_validation=protocol.n_validation,
                                                           cover_every_type=protocol.cover_every_type),
                                    seed=protocol.seed,
                                    charge_method=protocol.charge_method, angle_parameters=angles)
    wall["augmentation_s"] = time.perf_counter() - t0
    bends = f", {protocol.angles_per_structure} angle bends each" if angles.enabled else ""
    log(f"[2/5] augmentation: {augmentation.n_train} modified{bends} + {augmentation.n_valid} plain validation frames; "
        f"{augmentation.coverage_note()}")

    # 3. GFN2-xTB labels: all plain frames (baseline training set), the modified frames, the validation frames.
    t0 = time.perf_counter()
    labels = out / "labels"
    labelled = {
        "baseline": label_structures(reference.frames_path, labels / "baseline_train.extxyz", executor=executor,
                                     progress=progress),
        "augmented": label_structures(augmentation.train_path, labels / "augmented_train.extxyz",
                                      executor=executor, progress=progress),
        "valid": label_structures(augmentation.valid_path, labels / "valid.extxyz", executor=executor,
                                  progress=progress),
    }
    wall["labelling_s"] = time.perf_counter() - t0
    skipped = {k: len(v.skipped) for k, v in labelled.items()}
    log(f"[3/5] GFN2-xTB labels written; skipped (SCF): {skipped}")

    # 4. MACE models, every seed, for both datasets.
    t0 = time.perf_counter()
    models = {}
    for arm in ARMS:
        models[arm] = train_mace(labelled[arm].out_path, labelled["valid"].out_path, out / "models" / arm,
                                 preset=protocol.training_preset, seeds=protocol.seeds,
                                 e0s=labelled[arm].e0s_path, overrides=protocol.training_overrides or None,
                                 executor=executor, progress=progress)
    wall["training_s"] = time.perf_counter() - t0
    for arm in ARMS:
        rmse = ", ".join(f"{m.valid_forces_rmse_mev_per_angstrom:.0f}" for m in models[arm])
        log(f"[4/5] {arm}: {len(models[arm])} models (MACE preset {protocol.training_preset!r}), "
            f"validation force RMSE {rmse} meV/A")

    # 5. Batched high-temperature MD from the same random GAFF structures for every model.
    t0 = time.perf_counter()
    params = parameterize(molecule, charge_method=protocol.charge_method)
    bonds = np.array([(b.atom1, b.atom2) for b in params.bonds], dtype=int)
    r0 = np.array([b.r0 for b in params.bonds])
    trajectory = reference.all_positions_nm()
    rng = np.random.default_rng(protocol.seed + 1)
    start_frames = np.sort(rng.choice(len(trajectory), size=protocol.n_starts, replace=False))
    starts = trajectory[start_frames].astype(float)
    def md_settings(training_seed: int) -> ReplicaMDSettings:
        dynamics = replace(protocol.test_md, seed=protocol.test_md_seed(training_seed))
        return ReplicaMDSettings(dynamics, n_steps=protocol.test_steps, check_interval=protocol.check_interval,
                                 dtype=protocol.md_dtype, bond_tolerance_nm=protocol.bond_tolerance_nm,
                                 overlap_distance_nm=protocol.overlap_distance_nm)

    jobs = [dict(model_path=str(model.model_path), symbols=molecule.symbols, masses=molecule.masses_amu,
                 bonds=bonds, r0=r0, starts=starts, out_dir=str(out / "md" / arm / f"seed_{model.seed}"),
                 settings=md_settings(model.seed),
                 progress=f"{arm} seed {model.seed}" if progress and executor is None else None,
                 arm=arm, seed=model.seed)
            for arm in ARMS for model in models[arm]]
    outcomes = _run_md_jobs(jobs, executor, progress, log)
    wall["stability_md_s"] = time.perf_counter() - t0

    records = []
    for job, job_outcomes in zip(jobs, outcomes):
        for outcome in job_outcomes:
            records.append({"arm": job["arm"], "seed": job["seed"], "start": outcome["start"],
                            "start_frame": int(start_frames[outcome["start"]]), **outcome,
                            "collapse_time_ps": (protocol.test_md.ps(outcome["collapse_step"])
                                                 if outcome["collapse_step"] is not None else None)})
    explanations = _explain(records, jobs, molecule, params,
                            {"baseline": reference.frames_path, "augmented": augmentation.train_path})
    result = _write_report(molecule, out, protocol, records, models, augmentation, wall,
                           time.perf_counter() - started, explanations)
    log("[5/5] collapses: " + ", ".join(
        f"{m} {s['n_collapsed']}/{s['n_trajectories']} in {s['exposure_ps']:.0f} trajectory-ps"
        for m, s in result.summaries.items()))
    return result


def _run_md_jobs(jobs: list[dict], executor: Executor | None, progress: bool, log) -> list[list[dict]]:
    """Every model's replica MD. In a pool the workers draw no bars: this process follows their
    checkpoints (``replica_run.json``, written at least once a minute) in one bar of trajectory-ps."""
    if executor is None:
        return [run_model_md(job) for job in jobs]
    from concurrent.futures import wait

    futures = {executor.submit(run_model_md, job): k for k, job in enumerate(jobs)}
    results: list = [None] * len(jobs)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total_ps = sum(len(job["starts"]) * job["settings"].dynamics.ps(job["settings"].n_steps) for job in jobs)
        bar = tqdm(total=int(round(total_ps)), desc="800 K MD, all models", unit="traj-ps", dynamic_ncols=True)
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=10.0)
            for future in done:
                k = futures[future]
                results[k] = future.result()
                if progress:
                    collapsed = sum(not o["stable"] for o in results[k])
                    log(f"      MD done: {jobs[k]['arm']} seed {jobs[k]['seed']}, "
                        f"{collapsed}/{len(results[k])} collapsed")
            if bar is not None:
                covered, collapsed = _md_progress(jobs, results)
                bar.update(max(0, int(covered) - bar.n))
                bar.set_postfix(collapsed=collapsed)
    finally:
        if bar is not None:
            bar.close()
    return results


def _md_progress(jobs: list[dict], results: list) -> tuple[float, int]:
    """(trajectory-ps simulated or skipped by a collapse, collapses) over all jobs, from checkpoints."""
    covered, collapsed = 0.0, 0
    for job, result in zip(jobs, results):
        dt_ps = job["settings"].dynamics.timestep_ps
        n_steps, n_starts = job["settings"].n_steps, len(job["starts"])
        if result is not None:
            covered += n_starts * n_steps * dt_ps
            collapsed += sum(not o["stable"] for o in result)
            continue
        meta = Path(job["out_dir"]) / "replica_run.json"
        if not meta.is_file():
            continue
        try:
            state = read_json(meta).get("state", {})
        except ValueError:  # caught mid-write by a worker: next poll
            continue
        if "step" not in state:  # opened, not yet checkpointed
            continue
        # A collapsed start counts as covered: it will not run again.
        covered += (state["n_active"] * state["step"] + (n_starts - state["n_active"]) * n_steps) * dt_ps
        collapsed += sum(not o["stable"] for o in state["outcomes"].values())
    return covered, collapsed


def run_model_md(job: dict) -> list[dict]:
    """One model's batched replica MD (module level so any Executor can run it)."""
    outcomes = run_replica_stability(job["model_path"], job["symbols"], job["masses"], job["bonds"], job["r0"],
                                     job["starts"], job["out_dir"], job["settings"],
                                     progress=job["progress"])
    return [asdict(o) for o in outcomes]


def _write_report(molecule, out: Path, protocol: StabilityProtocol, records, models, augmentation, wall,
                  total_s, explanations=None) -> StabilityResult:
    from .plots import plot_collapse_bars, plot_survival
    from .report import PUBLISHED_P100, compare_arms, format_report, model_level, per_seed

    by_arm = {arm: [r for r in records if record_arm(r) == arm] for arm in ARMS}
    published = PUBLISHED_P100.get(molecule.name, {})
    summaries = {arm: summarize(arm, rs, protocol.test_ps, protocol.test_md.timestep_fs, published.get(arm)).as_dict()
                 for arm, rs in by_arm.items()}
    comparison = compare_arms(by_arm["augmented"], by_arm["baseline"], protocol.test_ps, protocol.test_md.timestep_fs)
    comparison["model_level"] = model_level(records, protocol.test_ps, protocol.test_md.timestep_fs)
    seeds = {arm: per_seed(rs, protocol.test_ps, protocol.test_md.timestep_fs) for arm, rs in by_arm.items()}
    title = (f"{molecule.name}: {protocol.temperature_K:g} K, {protocol.test_ps:g} ps, "
             f"{len(protocol.seeds)} seeds x {protocol.n_starts} starts")
    plots = {
        "collapse_probability": plot_collapse_bars({molecule.name: summaries}, out / "collapse_probability.png",
                                                   title),
        "survival": plot_survival(by_arm, protocol.test_ps, protocol.test_md.timestep_fs, out / "survival.png", title,
                                  hazards=summaries),
        "bond_length_distributions": augmentation.plot_path,
    }
    report = {
        "molecule": molecule.name,
        "smiles": molecule.smiles,
        "protocol": asdict(protocol),
        "collapse_criteria": {"bond_tolerance_angstrom": protocol.bond_tolerance_nm * 10,
                              "overlap_distance_angstrom": protocol.overlap_distance_nm * 10,
                              "bond_reference": "GAFF r0", "checked_every_steps": protocol.check_interval},
        "summary": summaries,
        "comparison": comparison,
        "per_seed": seeds,
        "collapses": explanations or [],
        "augmentation_coverage": augmentation.coverage,
        "text": format_report(molecule.name, summaries, comparison, seeds),
        "models": {arm: [{"seed": t.seed, "model_path": str(t.model_path),
                          "valid_energy_rmse_mev_per_atom": t.valid_energy_rmse_mev_per_atom,
                          "valid_forces_rmse_mev_per_angstrom": t.valid_forces_rmse_mev_per_angstrom}
                         for t in models[arm]] for arm in ARMS},
        "trajectories": records,
        "wall_time_s": {**wall, "total_s": total_s},
        "plots": {k: str(v) for k, v in plots.items()},
    }
    previous = out / "stability_report.json"
    if previous.is_file():
        # A resumed run adds its own time to what the earlier invocations spent.
        earlier = read_json(previous).get("wall_time_s", {})
        report["wall_time_s"] = {k: v + (earlier[k] if isinstance(earlier.get(k), (int, float)) else 0.0)
                                 for k, v in report["wall_time_s"].items()}
    report_path = write_json(previous, report)
    return StabilityResult(molecule.name, out, report_path, summaries, plots, total_s, comparison, seeds,
                           explanations or [])


def _explain(records, jobs, molecule, params, training_files) -> list[dict]:
    """Every collapse against the training sets' bond ranges (see :mod:`.explain`)."""
    from ..sampling.geometry import bond_angles
    from .explain import explain_collapse, training_angle_ranges, training_bond_ranges
    from .replica_md import load_collapse_frames

    bonds = np.array([(b.atom1, b.atom2) for b in params.bonds], dtype=int)
    r0 = np.array([b.r0 for b in params.bonds])
    types = [f"{b.type1}-{b.type2}" for b in params.bonds]
    ranges, angle_ranges = {}, {}
    for arm, path in training_files.items():
        frames = np.array([atoms.get_positions() for atoms in read_extxyz(path)]) * 0.1  # Angstrom -> nm
        ranges[arm] = training_bond_ranges(frames, bonds)
        angle_ranges[arm] = training_angle_ranges(frames, bond_angles(bonds))
    frames_by_job = {(job["arm"], job["seed"]): load_collapse_frames(job["out_dir"]) for job in jobs}
    return [explain_collapse(r, frames_by_job[(record_arm(r), r["seed"])].get(r["start"]), bonds, r0, types,
                             molecule.symbols, ranges, angle_ranges)
            for r in records if not r["stable"]]
