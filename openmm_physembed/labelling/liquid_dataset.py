"""A labelled liquid dataset in one call: pack a small box, GAFF NPT, split and scan the frames
(:mod:`~openmm_physembed.sampling.liquid_frames`), periodic GFN2-xTB labels with stress (tblite).

Layout of ``OUT/``::

    train.extxyz, valid.extxyz, test_scan.extxyz   labelled (REF_energy, REF_forces, REF_stress)
    train.e0s.json (and one beside each file)      isolated-atom energies for mace_run_train
    frames/*.extxyz                                the same structures before labelling
    topology.pdb                                   the box (bonds as CONECT): what CSO needs later
    dataset.json                                   composition, protocol, sizes, timings
    density_coverage.png                           GAFF NPT density and the scanned densities
    npt/, .labelling/                              checkpoint and per-structure label cache

Rerunning the same call resumes: the NPT continues from its checkpoint and only structures not
yet in the label cache are computed.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import read_json, write_extxyz, write_json
from ..sampling.liquid_frames import LiquidFramesProtocol, make_liquid_frames


class SubsetPaths:
    """``train_path``, ``valid_path``, ``test_scan_path`` of a dataset's ``paths`` mapping."""

    paths: dict

    @property
    def train_path(self) -> Path:
        return self.paths["train"]

    @property
    def valid_path(self) -> Path:
        return self.paths["valid"]

    @property
    def test_scan_path(self) -> Path:
        return self.paths["test_scan"]


@dataclass(frozen=True)
class LiquidDataset(SubsetPaths):
    out_dir: Path
    paths: dict  # subset -> labelled extxyz
    sizes: dict  # subset -> labelled structures
    n_atoms: int
    label_seconds: float  # computing labels in this call (0 when all came from the cache)
    manifest_path: Path
    plot_path: Path
    n_computed: int = 0  # single points run in this call (the rest came from the label cache)


def make_liquid_dataset(box, out_dir: str | Path, protocol: LiquidFramesProtocol = LiquidFramesProtocol(),
                        executor: Executor | None = None, progress: bool = True,
                        electronic_temperature_K: float = 300.0) -> LiquidDataset:
    """Frames of ``box`` (a packed :class:`~openmm_physembed.chem.box.LiquidBox`) labelled with
    periodic GFN2-xTB; see the module docstring for what is written where."""
    from .labeller import label_structures

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    frames = make_liquid_frames(box, out_dir, protocol, progress=progress)
    npt_seconds = time.perf_counter() - started
    box.write_pdb(out_dir / "topology.pdb")
    subsets = {"train": frames.train, "valid": frames.valid, "test_scan": frames.test_scan}
    for name, atoms_list in subsets.items():
        write_extxyz(out_dir / "frames" / f"{name}.extxyz", atoms_list)

    manifest_path = out_dir / "dataset.json"
    previous = read_json(manifest_path) if manifest_path.is_file() else {}
    label_seconds, paths, sizes, n_computed = 0.0, {}, {}, 0
    for name, atoms_list in subsets.items():
        started = time.perf_counter()
        result = label_structures(atoms_list, out_dir / f"{name}.extxyz", executor=executor,
                                  work_dir=out_dir / ".labelling", progress=progress, periodic=True,
                                  electronic_temperature_K=electronic_temperature_K)
        if result.n_computed:
            label_seconds += time.perf_counter() - started
        n_computed += result.n_computed
        paths[name], sizes[name] = result.out_path, result.n_labelled
    n_atoms = box.n_atoms
    per_structure = label_seconds / max(1, sum(len(a) for a in subsets.values()))
    plot_path = _plot_density_coverage(frames, out_dir / "density_coverage.png")
    after_first_tenth = frames.npt_density_g_cm3[len(frames.npt_density_g_cm3) // 10:]
    write_json(manifest_path, {
        "components": [m.name for m in box.molecules], "smiles": [m.smiles for m in box.molecules],
        "counts": list(box.counts), "n_atoms": n_atoms, "mass_fractions": list(box.mass_fractions),
        **frames.settings, "sizes": sizes, "files": {k: str(Path(p).name) for k, p in paths.items()},
        "labels": "GFN2-xTB (tblite), periodic, REF_energy eV, REF_forces eV/A, REF_stress eV/A^3",
        "npt_density_g_cm3": {"mean": float(np.mean(after_first_tenth)), "std": float(np.std(after_first_tenth))},
        # Timings of the call that computed them; a resumed call keeps the first one's.
        "npt_seconds": previous.get("npt_seconds") or npt_seconds,
        "label_seconds": previous.get("label_seconds") or label_seconds,
        "label_seconds_per_structure_wall": previous.get("label_seconds_per_structure_wall") or per_structure,
    })
    return LiquidDataset(out_dir, paths, sizes, n_atoms, label_seconds, manifest_path, plot_path, n_computed)


def _plot_density_coverage(frames, path: Path) -> Path:
    from ..plotting import pyplot, save_figure

    plt = pyplot()
    fig, (trace, hist) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [2, 1]})
    trace.plot(frames.npt_time_ps, frames.npt_density_g_cm3, color="0.4", lw=1)
    trace.set_xlabel("GAFF NPT time (ps)")
    trace.set_ylabel("density (g/cm$^3$)")
    trace.set_title("GAFF NPT of the labelled box")

    def densities(atoms_list):
        return [a.info["gaff_density_g_cm3"] / a.info["scale_factor"] ** 3 for a in atoms_list]

    bins = np.linspace(*np.percentile(densities(frames.train + frames.test_scan), [0, 100]), 30)
    hist.hist(densities(frames.train), bins=bins, alpha=0.7, label="train")
    hist.hist(densities(frames.test_scan), bins=bins, alpha=0.7, label="test scan")
    hist.hist(densities(frames.valid), bins=bins, alpha=0.7, label="valid")
    hist.set_xlabel("density (g/cm$^3$)")
    hist.set_ylabel("structures")
    hist.legend()
    return save_figure(fig, path)
