"""Table 1 at CPU scale (issue 24): densities of a liquid MLFF the toolkit trains, a1 fitted on EC:EMC 3:7
at 298 K and transferred to the other rows. One command, resumable: rerun it after an interruption and it
continues where it stopped (every stage is a `physembed` command that resumes by itself; finished stages
are recorded in OUT/stages.json and skipped).

Stages, in order (``--stages`` runs a subset, ``--plan`` only prints the plan and its estimated wall time):

  hmr        GAFF, EMC 298 K: does hydrogen mass repartitioning at 2 fs give the 1 fs density within 2
             standard errors? (benchmarks/liquid/hmr_density_check.py). If not, every later density runs
             at 1 fs with the force field's masses.
  smallbox   GAFF density at the MLFF box size against ``--large-molecules`` (128) molecules, for EC 313 K,
             EMC 298 K and EC:EMC 3:7 298 K: the finite-size bias, to compare with the fit tolerance.
  dataset    `physembed liquid-dataset --table1`: every row's liquid and temperature, GAFF NPT frames and
             rigid-volume scans, periodic GFN2-xTB labels (energy, forces, stress).
  sizing     the candidate models (channels x max L, and the first one on half of the data as the data
             axis) trained ``--sizing-epochs`` each, two at a time on one thread each; their validation
             errors and the NPT step cost of each; writes sizing.json (the measured table).
  model      the chosen architecture (the cheapest candidate within 10 % of the best validation force
             RMSE) trained ``--epochs``; the model file is copied into the results when small.
  cost       MLFF+CSO NPT step per atom and the share that is the bare model call
             (benchmarks/md_throughput.py on the trained model, box of the density runs).
  without    uncorrected density of every row.
  fit        `physembed fit-a1` on EC:EMC 3:7 298 K to the experiment +- ``--fit-tolerance`` in at most 3
             runs (fluctuation + MBAR reweighting, Newton steps) and its confirming run; alpha's sign
             from the uncorrected density (too low: attraction added, alpha > 0, as the paper's MACE-EC/EMC).
  with       corrected density of every other row (the fitted correction.json).
  fig5       `physembed volume-scan` of the EC:EMC 3:7 298 K part with the fitted correction.
  viscosity  EMC 298 K without and with the correction (Green-Kubo, STACIE), at 1 fs and the real masses.
  summary    summary.json (per row without/with as [density, stderr, n_effective], experiment, published),
             the fit, the MAEs with their uncertainty, per-stage wall times, plots, density series (CSV).

Every density point is one `physembed density` run of ``--ps`` ps (2 fs with HMR) on both cores (two
OpenMM threads: workarounds.CPU_SINGLE_THREAD), one after the other. Usage::

    python benchmarks/liquid/table1_cpu.py --plan                 # print the plan and estimate only
    python benchmarks/liquid/table1_cpu.py                        # everything (many hours on 2 cores)
    python benchmarks/liquid/table1_cpu.py --stages hmr smallbox  # some stages
    python benchmarks/liquid/table1_cpu.py --device-preset gpu    # the paper-size run, one GPU

"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results" / "liquid" / "table1_cpu"

# (system, temperature_K, experiment, published without, published with): the paper's Table 1, MACE-EC/EMC
# (../shared/reference/published_results.md). The fit row comes first.
FIT_ROW = ("EC:EMC 3:7", 298.15)
ROWS = (
    ("EC:EMC 3:7", 298.15, 1.095, 1.067, 1.095),
    ("EC", 313.15, 1.321, 1.278, 1.308),
    ("EMC", 298.15, 1.006, 0.986, 1.017),
    ("EC:EMC 5:5", 298.15, 1.157, 1.125, 1.153),
    ("EC:EMC 3:7", 293.15, 1.101, 1.072, 1.101),
    ("EC:EMC 3:7", 313.15, 1.078, 1.053, 1.084),
)
SMALLBOX_ROWS = (("EC", 313.15), ("EMC", 298.15), ("EC:EMC 3:7", 298.15))
PUBLISHED_MAE = {"without": None, "with": 0.006, "change_percent": -78.0}
STAGES = ("hmr", "smallbox", "dataset", "sizing", "model", "cost", "without", "fit", "with", "fig5",
          "viscosity", "summary")
# Smallest box edge of a density run: MACE r_max 0.5 nm and the CSO cutoff must stay below half of it
# (with the barostat's fluctuations, a few % smaller than at the experimental density).
MIN_BOX_EDGE_NM = 1.25
CSO_CUTOFF_NM = 0.55
SMALL_GAFF_CUTOFF_FRACTION = 0.45  # as the liquid dataset's GAFF NPT
MOLAR_MASS = {"EC": 88.062, "EMC": 104.105}  # g/mol
ATOMS = {"EC": 10, "EMC": 15}

# Measured rates the plan's estimate uses (2 CPU cores; README "Facts"): MACE+CSO NPT 0.30 ms per atom-step
# for the cpu-liquid model, periodic GFN2-xTB 8.5 s per 160-atom box, cpu-liquid training 25 s per epoch
# for 80 160-atom boxes (max L 1: 2.7x; 32 channels: ~2x, assumed), GAFF NPT ~2 us per atom-step with PME.
MS_PER_ATOM_STEP = 0.30
LABEL_S_PER_ATOM = 8.5 / 160
TRAIN_S_PER_ATOM_EPOCH = 25.0 / (80 * 160)
GAFF_US_PER_ATOM_STEP = 2.0


@dataclass(frozen=True)
class Candidate:
    name: str
    channels: int
    max_L: int
    data_fraction: float = 1.0

    @property
    def relative_cost(self) -> float:
        return (self.channels / 16.0) ** 1.0 * (2.7 if self.max_L else 1.0) * self.data_fraction


def parse_candidate(text: str) -> Candidate:
    """'16x0' (channels x max L) or '16x0@0.5' (on half the training data)."""
    arch, _, fraction = text.partition("@")
    channels, _, max_l = arch.partition("x")
    try:
        return Candidate(text, int(channels), int(max_l), float(fraction) if fraction else 1.0)
    except ValueError:
        raise SystemExit(f"candidate {text!r}: expected CHANNELSxMAXL or CHANNELSxMAXL@FRACTION, e.g. 32x0") from None


def composition_counts(system: str) -> dict[str, float]:
    """Mass fractions of the row's components, e.g. {'EC': 0.3, 'EMC': 0.7}."""
    if ":" not in system:
        return {system: 1.0}
    names, ratio = system.split(" ")
    parts = [float(x) for x in ratio.split(":")]
    return {n: p / sum(parts) for n, p in zip(names.split(":"), parts)}


def nm3_per_molecule(system: str, density: float) -> float:
    """Volume of one molecule of the mixture (its mass-fraction mean molar mass) at ``density`` g/cm3."""
    from openmm_physembed.units import density_g_cm3

    mean_molar_mass = 1.0 / sum(f / MOLAR_MASS[n] for n, f in composition_counts(system).items())
    return density_g_cm3(mean_molar_mass, 1.0) / density  # density is inverse in volume


def molecules_for_edge(system: str, density: float, edge_nm: float = MIN_BOX_EDGE_NM) -> int:
    """Fewest molecules whose box at ``density`` g/cm3 has an edge of at least ``edge_nm``."""
    return math.ceil(edge_nm ** 3 / nm3_per_molecule(system, density))


def box_edge_nm(system: str, n_molecules: int, density: float) -> float:
    return (n_molecules * nm3_per_molecule(system, density)) ** (1.0 / 3.0)


def atoms_for(system: str, n_molecules: int) -> float:
    fractions = composition_counts(system)
    moles = {n: f / MOLAR_MASS[n] for n, f in fractions.items()}
    total = sum(moles.values())
    return n_molecules * sum(ATOMS[n] * m / total for n, m in moles.items())


def row_tag(system: str, temperature_K: float) -> str:
    return f"{system.replace(' ', '_').replace(':', '-')}_{temperature_K:.2f}K"


class Orchestrator:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Path(args.out)
        self.results = Path(args.results)
        self.stages_path = self.out / "stages.json"
        self.state = json.loads(self.stages_path.read_text()) if self.stages_path.is_file() else {}

    # ---- plumbing ---------------------------------------------------------------------------------
    def physembed(self, argv: list[str], threads: int | None = None, log: Path | None = None) -> None:
        """One `physembed` command in a child process (a fresh interpreter per run: no state carried over)."""
        exe = Path(sys.executable).with_name("physembed")
        command = [str(exe) if exe.is_file() else "physembed", *argv]
        env = dict(os.environ)
        if threads is not None:
            env.update(OMP_NUM_THREADS=str(threads), OPENMM_CPU_THREADS=str(max(2, threads)))
        print("$ " + " ".join(f"'{c}'" if " " in c else c for c in command), flush=True)
        if log is None:
            code = subprocess.run(command, env=env).returncode
        else:  # the console keeps the command's progress bars, the log keeps a copy
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as handle:
                process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                for chunk in iter(lambda: process.stdout.read1(4096), b""):
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                    handle.write(chunk)
                code = process.wait()
        if code != 0:
            raise SystemExit(f"`physembed {argv[0]}` failed (exit {code}{', log ' + str(log) if log else ''}); "
                             "rerun this script to resume")

    def script(self, path: str, argv: list[str]) -> None:
        command = [sys.executable, str(REPO / path), *argv]
        print("$ python " + " ".join([path, *argv]), flush=True)
        if subprocess.run(command).returncode != 0:
            raise SystemExit(f"{path} failed; rerun this script to resume")

    def record(self, stage: str, seconds: float, **extra) -> None:
        entry = self.state.get(stage, {})
        entry.update(done=True, **extra)
        # A resumed stage times only what it ran now: keep the first complete timing.
        entry.setdefault("wall_time_s", seconds)
        self.state[stage] = entry
        self.out.mkdir(parents=True, exist_ok=True)
        self.stages_path.write_text(json.dumps(self.state, indent=1))

    # ---- choices that later stages read ------------------------------------------------------------
    @property
    def hmr_ok(self) -> bool:
        if self.args.no_hmr:
            return False
        path = self.results / "hmr_check.json"
        if not path.is_file():
            return False
        boxes = list(json.loads(path.read_text()).get("boxes", {}).values())
        return bool(boxes) and all(b.get("comparison", {}).get("within_2_stderr") and
                                   b.get("comparison", {}).get("stderr_target_met") for b in boxes)

    @property
    def expects_hmr(self) -> bool:
        """What the plan assumes: HMR until the check has run and said otherwise (or --no-hmr)."""
        checked = (self.results / "hmr_check.json").is_file()
        return self.hmr_ok if checked else not self.args.no_hmr

    def md_options(self, ps: float | None = None, allow_hmr: bool = True) -> list[str]:
        ps = self.args.ps if ps is None else ps
        hmr = allow_hmr and self.hmr_ok
        timestep = 2.0 if hmr else 1.0
        steps = int(round(ps * 1000 / timestep))
        report = int(round(100 / timestep))  # a frame every 0.1 ps
        options = ["--steps", str(steps), "--timestep", f"{timestep:g}", "--report-interval", str(report),
                   "--average-last-ps", f"{ps - self.args.equilibration_ps:g}", "--skip-timing",
                   "--seed", str(self.args.seed)]
        return options + (["--hydrogen-mass", "3"] if hmr else [])

    def n_molecules(self, system: str, experiment: float) -> int:
        return molecules_for_edge(system, experiment)

    @property
    def model_path(self) -> str:
        result = self.out / "model" / "seed_0" / "result.json"
        if not result.is_file():
            raise SystemExit("no trained model yet: run the dataset, sizing and model stages first")
        return json.loads(result.read_text())["model_path"]

    def density_dir(self, variant: str, system: str, temperature_K: float) -> Path:
        return self.out / variant / row_tag(system, temperature_K)

    def run_density(self, variant: str, system: str, temperature_K: float, experiment: float,
                    extra: list[str]) -> None:
        out = self.density_dir(variant, system, temperature_K)
        if (out / "density.json").is_file():
            return
        self.physembed(["density", "--experiment", system,
                        "--temperature", f"{temperature_K}",
                        "--n-molecules", str(self.n_molecules(system, experiment)),
                        "--model", self.model_path, "--cso-cutoff", f"{CSO_CUTOFF_NM}", "--precision", "float32",
                        *self.md_options(), *extra, "-o", str(out)], threads=2, log=out / "log.txt")

    # ---- stages -----------------------------------------------------------------------------------
    def stage_hmr(self):
        self.script("benchmarks/liquid/hmr_density_check.py",
                    ["--ps", f"{self.args.hmr_ps:g}", "--out", str(self.out / "hmr"),
                     "--results", str(self.results / "hmr_check.json")])

    def stage_smallbox(self):
        for system, temperature in SMALLBOX_ROWS:
            experiment = next(r[2] for r in ROWS if r[0] == system and abs(r[1] - temperature) < 0.5)
            for label, n in (("small", self.n_molecules(system, experiment)), ("large", self.args.large_molecules)):
                # 0.45 of the edge as the liquid dataset's GAFF NPT, at most the usual 1 nm
                cutoff = min(1.0, round(SMALL_GAFF_CUTOFF_FRACTION * box_edge_nm(system, n, experiment), 3))
                out = self.out / "smallbox" / f"{row_tag(system, temperature)}_{label}"
                if (out / "density.json").is_file():
                    continue
                self.physembed(["density", "--experiment", system, "--temperature", f"{temperature}",
                                "--n-molecules", str(n), "--gaff-cutoff", f"{cutoff}",
                                "--cso-cutoff", f"{min(CSO_CUTOFF_NM, cutoff)}",
                                *self.md_options(self.args.smallbox_ps), "-o", str(out)],
                               threads=2, log=out / "log.txt")

    def stage_dataset(self):
        self.physembed(["liquid-dataset", "--table1", "--n-molecules", str(self.args.dataset_molecules),
                        "-o", str(self.out / "dataset"), "--no-progress"], log=self.out / "dataset" / "log.txt")

    def _train(self, name: str, candidate: Candidate, epochs: int, threads: int) -> None:
        """Train (or resume) one model; the wall time of a training run start to end is kept in
        OUT/NAME/train_wall_s.json (a resumed run is not timed: its time is partial)."""
        timing = self.out / name / "train_wall_s.json"
        fresh = not (self.out / name / "seed_0").exists()
        started = time.perf_counter()
        dataset = self.out / "dataset"
        train = dataset / "train.extxyz"
        if candidate.data_fraction < 1.0:
            train = self._subset(train, candidate.data_fraction)
        self.physembed(["train", "--preset", "cpu-liquid", "--train", str(train), "--valid",
                        str(dataset / "valid.extxyz"), "--e0s", str(dataset / "train.e0s.json"),
                        "-o", str(self.out / name), "--seeds", "0", "--device", "cpu",
                        "--threads-per-seed", str(threads),
                        "--set", f"num_channels={candidate.channels}", "--set", f"max_L={candidate.max_L}",
                        "--set", f"max_num_epochs={epochs}"], log=self.out / name / "log.txt")
        if fresh:
            timing.write_text(json.dumps({"train_wall_s": time.perf_counter() - started, "threads": threads}))

    def _subset(self, train: Path, fraction: float) -> Path:
        """Every k-th training box, deterministic, so the data axis compares like with like."""
        from ase.io import read, write

        path = train.with_name(f"train_{fraction:g}.extxyz")
        if not path.is_file():
            frames = read(train, index=":")
            step = 1.0 / fraction
            keep = [frames[int(k * step)] for k in range(int(len(frames) * fraction))]
            write(path, keep, format="extxyz")
            shutil.copy(train.with_suffix(".e0s.json"), path.with_suffix(".e0s.json"))
        return path

    def stage_sizing(self):
        candidates = [parse_candidate(c) for c in self.args.candidates]
        with ThreadPoolExecutor(2) as pool:  # two trainings at a time, one thread each
            list(pool.map(lambda c: self._train(f"sizing/{c.name}", c, self.args.sizing_epochs, 1), candidates))
        rows = []
        for c in candidates:
            result = json.loads((self.out / "sizing" / c.name / "seed_0" / "result.json").read_text())
            rows.append({"candidate": c.name, "channels": c.channels, "max_L": c.max_L,
                         "data_fraction": c.data_fraction, "epochs": self.args.sizing_epochs,
                         **{k: result.get(k) for k in ("valid_energy_rmse_mev_per_atom",
                                                       "valid_forces_rmse_mev_per_angstrom",
                                                       "valid_stress_rmse_mev_per_angstrom3")},
                         **self._train_timing(f"sizing/{c.name}"),
                         "model_path": result["model_path"],
                         "md": self._time_model(result["model_path"], self.out / "sizing" / c.name)})
        self.results.mkdir(parents=True, exist_ok=True)
        (self.results / "sizing.json").write_text(json.dumps({"rows": rows}, indent=1))

    def _train_timing(self, name: str) -> dict:
        path = self.out / name / "train_wall_s.json"
        return json.loads(path.read_text()) if path.is_file() else {"train_wall_s": None}

    def _time_model(self, model: str, out: Path) -> dict:
        """NPT step and bare-model cost of one model file on the density runs' EMC box."""
        n_atoms = int(atoms_for("EMC", self.n_molecules("EMC", 1.006)))
        json_dir = out / "throughput"
        if not (json_dir / "md_throughput.json").is_file():
            self.script("benchmarks/md_throughput.py", ["--model", model, "--dtype", "float32", "--box-molecule",
                                                        "emc", "--box-density", "1.006", "--box-atoms",
                                                        str(n_atoms), "--engines", "ours", "floor", "--threads",
                                                        "2", "--box-steps", "20", "--rounds", "3", "--out",
                                                        str(json_dir)])
        return json.loads((json_dir / "md_throughput.json").read_text())

    def chosen_candidate(self) -> Candidate:
        if self.args.architecture:
            return parse_candidate(self.args.architecture)
        rows = json.loads((self.results / "sizing.json").read_text())["rows"]
        full = [r for r in rows if r["data_fraction"] == 1.0]
        best = min(r["valid_forces_rmse_mev_per_angstrom"] for r in full)
        within = [r for r in full if r["valid_forces_rmse_mev_per_angstrom"] <= 1.1 * best]
        cheapest = min(within, key=lambda r: parse_candidate(r["candidate"]).relative_cost)
        return parse_candidate(cheapest["candidate"])

    def stage_model(self):
        candidate = self.chosen_candidate()
        print(f"model: {candidate.channels} channels, max L {candidate.max_L}, {self.args.epochs} epochs")
        self._train("model", Candidate("model", candidate.channels, candidate.max_L), self.args.epochs, 2)
        result = json.loads((self.out / "model" / "seed_0" / "result.json").read_text())
        model = Path(result["model_path"])
        self.results.mkdir(parents=True, exist_ok=True)
        if model.stat().st_size < 5e6:  # commit the model so the notebook and `transfer` need no retraining
            shutil.copy(model, self.results / "table1_cpu.model")
        if Path(result["learning_curve_png"]).is_file():
            shutil.copy(result["learning_curve_png"], self.results / "learning_curve.png")

    def stage_cost(self):
        self._time_model(self.model_path, self.out / "model")

    def stage_without(self):
        for system, temperature, experiment, *_ in ROWS:
            self.run_density("without", system, temperature, experiment, [])

    def fit_alpha(self) -> float:
        density = self.read_density(self.density_dir("without", *FIT_ROW))
        # Too low a density: the model lacks attraction; the CSO term (negative) scaled by alpha > 0 adds it.
        return self.args.alpha if density[0] < ROWS[0][2] else -self.args.alpha

    def stage_fit(self):
        out = self.out / "fit"
        system, temperature = FIT_ROW
        self.physembed(["fit-a1", "--experiment", system, "--temperature", f"{temperature}",
                        "--n-molecules", str(self.n_molecules(system, ROWS[0][2])), "--model", self.model_path,
                        "--alpha", f"{self.fit_alpha():g}", "--a1-initial", f"{self.args.a1_initial:g}",
                        "--method", "reweighting", "--tolerance", f"{self.args.fit_tolerance:g}",
                        "--max-simulations", "3", "--cso-cutoff", f"{CSO_CUTOFF_NM}", "--precision", "float32",
                        *self.md_options(), "-o", str(out)], threads=2, log=out / "log.txt")

    @property
    def correction_path(self) -> Path:
        return self.out / "fit" / "correction.json"

    def stage_with(self):
        for system, temperature, experiment, *_ in ROWS[1:]:
            self.run_density("with", system, temperature, experiment, ["--correction", str(self.correction_path)])

    def stage_fig5(self):
        part = self.out / "dataset" / "parts" / row_tag(*FIT_ROW)
        self.physembed(["volume-scan", "--model", self.model_path, "--dataset", str(part), "--correction",
                        str(self.correction_path), "-o", str(self.out / "fig5")], threads=2,
                       log=self.out / "fig5" / "log.txt")

    def stage_viscosity(self):
        for label, extra in (("without", []), ("with", ["--correction", str(self.correction_path)])):
            out = self.out / "viscosity" / label
            self.physembed(["viscosity", "--experiment", "EMC", "--n-molecules",
                            str(self.n_molecules("EMC", 1.006)), "--model", self.model_path,
                            "--cso-cutoff", f"{CSO_CUTOFF_NM}", "--cso-switch", f"{CSO_CUTOFF_NM - 0.05:g}",
                            "--precision", "float32", *self.md_options(self.args.ps, allow_hmr=False),
                            "--replicas", str(self.args.viscosity_replicas),
                            "--nvt-steps", str(int(self.args.viscosity_ns * 1e6)), *extra, "-o", str(out)],
                           threads=2, log=out / "log.txt")

    # ---- summary ----------------------------------------------------------------------------------
    @staticmethod
    def read_density(directory: Path) -> list[float] | None:
        path = directory / "density.json"
        if not path.is_file():
            return None
        d = json.loads(path.read_text())["density_g_cm3"]
        return [d["value"], d["stderr"], d["n_effective"]]

    def stage_summary(self):
        from table1_summary import build_summary  # the arithmetic, tested apart (tests/test_table1_summary.py)

        summary = build_summary(self, ROWS, FIT_ROW, SMALLBOX_ROWS, PUBLISHED_MAE)
        self.results.mkdir(parents=True, exist_ok=True)
        (self.results / "summary.json").write_text(json.dumps(summary, indent=1))
        self.export_series()
        print(f"summary -> {self.results / 'summary.json'}")

    def export_series(self) -> None:
        """Each run's density time series, so every mean and error can be recomputed from the results."""
        import numpy as np

        from openmm_physembed.units import density_g_cm3

        series_dir = self.results / "density_series"
        for density_json in sorted(self.out.glob("**/density.json")):
            run = density_json.parent
            chunks = sorted((run / "npt" / "records" / "npt").glob("*.npz"))
            if not chunks:
                continue
            data = [np.load(c) for c in chunks]
            step = np.concatenate([d["step"] for d in data])
            volume = np.concatenate([d["volume_nm3"] for d in data])
            meta = json.loads(density_json.read_text())
            timestep_fs = meta["protocol"]["dynamics"]["timestep_fs"]
            rel = run.relative_to(self.out)
            target = series_dir / ("__".join(rel.parts) + ".csv")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["time_ps", "volume_nm3", "density_g_cm3"])
                for s, v in zip(step, volume):
                    writer.writerow([f"{s * timestep_fs * 1e-3:.3f}", f"{v:.6f}", f"{density_g_cm3(meta['total_mass_amu'], v):.6f}"])

    # ---- plan -------------------------------------------------------------------------------------
    def plan(self) -> list[tuple[str, float]]:
        a = self.args
        steps_per_point = a.ps * 1000 / (2.0 if self.expects_hmr else 1.0)
        atoms = {r[0]: atoms_for(r[0], self.n_molecules(r[0], r[2])) for r in ROWS}
        point = {r: steps_per_point * atoms[r[0]] * MS_PER_ATOM_STEP * 1e-3 for r in ROWS}
        n_label = 6 * (60 + 10 + 4 * 6 + 3 * 6)
        label_atoms = 10 * 12.5  # atoms per dataset box (10 molecules)
        train_atoms = 6 * (60 + 24) * 10 * 12.5
        candidates = [parse_candidate(c) for c in a.candidates]
        sizing = sum(c.relative_cost for c in candidates) * train_atoms * TRAIN_S_PER_ATOM_EPOCH * a.sizing_epochs
        chosen = candidates[0]
        visc_steps = a.viscosity_replicas * a.viscosity_ns * 1e6 + a.ps * 1000
        emc_atoms = atoms_for("EMC", self.n_molecules("EMC", 1.006))
        return [
            ("hmr", 2 * 2 * a.hmr_ps * 1000 * 240 * GAFF_US_PER_ATOM_STEP * 1e-6 * 1.5),
            ("smallbox", sum(a.smallbox_ps * 500 * (atoms_for(s, self.n_molecules(s, 1.1)) + atoms_for(s, a.large_molecules))
                             * GAFF_US_PER_ATOM_STEP * 1e-6 for s, _ in SMALLBOX_ROWS)),
            ("dataset", n_label * label_atoms * LABEL_S_PER_ATOM + 6 * 200e3 * 125 * GAFF_US_PER_ATOM_STEP * 1e-6),
            ("sizing", sizing / 1.0),  # two at a time on one thread each ~ one at a time on two
            ("model", chosen.relative_cost * train_atoms * TRAIN_S_PER_ATOM_EPOCH * a.epochs),
            ("cost", 300.0),
            ("without", sum(point.values())),
            ("fit", 4 * point[ROWS[0]]),
            ("with", sum(point[r] for r in ROWS[1:])),
            ("fig5", 300.0),
            ("viscosity", 2 * visc_steps * emc_atoms * MS_PER_ATOM_STEP * 1e-3),
            ("summary", 10.0),
        ]

    def print_plan(self, stages) -> None:
        plan = dict(self.plan())
        print("Table 1 at CPU scale: plan (estimated wall time on 2 CPU cores, from the measured rates in "
              "this script's header)")
        total = 0.0
        for stage in stages:
            done = self.state.get(stage, {}).get("done")
            seconds = 0.0 if done else plan[stage]
            total += seconds
            print(f"  {stage:<10} {'done' if done else f'{seconds / 3600:6.1f} h'}")
        print(f"  total      {total / 3600:6.1f} h (rerun the same command to resume after an interruption)",
              flush=True)

    def run(self, stages) -> None:
        self.print_plan(stages)
        if self.args.plan:
            return
        for stage in stages:
            if self.state.get(stage, {}).get("done") and stage != "summary":
                continue
            print(f"\n=== {stage}", flush=True)
            started = time.perf_counter()
            getattr(self, f"stage_{stage}")()
            self.record(stage, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--out", default="runs/table1_cpu", help="run directory (resumable)")
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--plan", action="store_true", help="print the plan and its estimate only")
    parser.add_argument("--ps", type=float, default=100.0, help="simulated ps per density point")
    parser.add_argument("--equilibration-ps", type=float, default=20.0,
                        help="ps left out before the averaging window (equilibration is also detected)")
    parser.add_argument("--hmr-ps", type=float, default=1000.0, help="ps per variant of the HMR check")
    parser.add_argument("--no-hmr", action="store_true", help="1 fs and the force field's masses everywhere")
    parser.add_argument("--smallbox-ps", type=float, default=400.0)
    parser.add_argument("--large-molecules", type=int, default=128)
    parser.add_argument("--dataset-molecules", type=int, default=10)
    parser.add_argument("--candidates", nargs="+", default=["16x0", "32x0", "16x1", "16x0@0.5"],
                        help="sizing candidates CHANNELSxMAXL[@DATA_FRACTION]")
    parser.add_argument("--sizing-epochs", type=int, default=15)
    parser.add_argument("--architecture", default=None, help="skip the choice: CHANNELSxMAXL of the model")
    parser.add_argument("--epochs", type=int, default=60, help="epochs of the chosen model")
    parser.add_argument("--alpha", type=float, default=0.05, help="|alpha| of the fit (paper: 0.05)")
    parser.add_argument("--a1-initial", type=float, default=0.6, help="first a1 of the fit (paper: 0.6)")
    parser.add_argument("--fit-tolerance", type=float, default=0.005, help="g/cm3")
    parser.add_argument("--viscosity-replicas", type=int, default=3)
    parser.add_argument("--viscosity-ns", type=float, default=0.1,
                        help="NVT ns per replica (published 5; at 180 atoms on 2 cores 0.1 ns takes ~1.5 h)")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    stages = [s for s in STAGES if s in args.stages]
    Orchestrator(args).run(stages)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
