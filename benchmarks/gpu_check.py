"""One-command GPU check: does the CUDA path run, agree with the CPU, and beat openmm-ml?

Prints, and writes to ``results/gpu_check.json``:

1. the machine, package versions, OpenMM's platforms and plugin load failures, what torch sees;
2. parity, CPU platform vs CUDA platform, same System (our MACE TorchForce, module built on the
   CPU as ``add_mace_force`` does): energies and forces of a periodic ethylene carbonate box
   (~1000 atoms) and of batched gas-phase paracetamol replicas, float64 MACE in a "double"
   Context and float32 MACE in a "mixed" Context; and the exact MACE virial (the ``exact-mace``
   pressure provider, which runs the module on the Context's GPU) on both platforms; and, when
   cuEquivariance is installed, eager mace-torch with its kernels vs e3nn on CUDA (training path);
3. MD steps/s, ours vs openmm-ml 1.8's ``MLPotential('mace')`` on the same random model, float32
   MACE in a "mixed" Context, for a ~1000-atom box, a ~3000-atom box and 100 paracetamol
   replicas, ours with TorchScript's graph-executor optimisation on and off
   (``set_torchscript_optimization``); peak GPU memory of each.

Without CUDA (no OpenMM CUDA platform, or torch sees no GPU) it runs the CPU half: the CPU
references of 2 (and float32 vs float64 on the CPU), the virial on the CPU, and steps/s on the
CPU platform, one step each, without the 3000-atom box; it says that the CUDA half was skipped
and writes
``results/gpu_check_cpu_only.json`` instead (field ``"cuda"``). Systems and helpers come from
``md_throughput.py``. Exit status 1 when a check failed or raised, else 0.

Usage::

    python benchmarks/gpu_check.py            # under 5 minutes on one GPU; ~3 minutes CPU-only on 2 cores
    python benchmarks/gpu_check.py --quick    # smaller systems, shorter timings
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import md_throughput  # noqa: E402  - the systems and engines of the throughput benchmark

# Relative force error max|dF| / max|F| and energy error per atom (kJ/mol) allowed between
# platforms: float64 MACE in a "double" Context agrees to round-off; float32 to its precision.
TOLERANCES = {"double": {"force_max_rel": 1e-8, "energy_per_atom_kj_mol": 1e-8},
              "mixed": {"force_max_rel": 1e-4, "energy_per_atom_kj_mol": 1e-4}}
CASES = (("float64", "double"), ("float32", "mixed"))
EXTRA_PACKAGES = ("openmm-cuda-12", "openmm-torch-cuda-12", "cuequivariance", "cuequivariance-torch",
                  "cuequivariance-ops-torch-cu12")


# ---------------------------------------------------------------- environment
def environment() -> dict:
    """Platforms, plugin load failures and CUDA as OpenMM and torch see them."""
    import importlib.metadata as md

    import openmm
    import torch

    from openmm_physembed.potentials.mace_force import import_openmmtorch

    failures = list(openmm.Platform.getPluginLoadFailures())  # at import; openmm-torch's are retried next
    import_openmmtorch()  # retries the openmm-torch plugins that failed before torch was imported
    platforms = {}
    for i in range(openmm.Platform.getNumPlatforms()):
        platform = openmm.Platform.getPlatform(i)
        platforms[platform.getName()] = {"speed": platform.getSpeed(),
                                         "properties": list(platform.getPropertyNames())}
    versions = {}
    for pkg in EXTRA_PACKAGES:
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    cuda = {"torch_cuda_available": torch.cuda.is_available(), "torch_cuda_version": torch.version.cuda,
            "devices": []}
    if torch.cuda.is_available():
        for k in range(torch.cuda.device_count()):
            prop = torch.cuda.get_device_properties(k)
            cuda["devices"].append({"name": prop.name, "memory_gib": round(prop.total_memory / 2**30, 1),
                                    "capability": f"{prop.major}.{prop.minor}"})
        try:
            import cuequivariance_ops_torch  # noqa: F401 - loads the compiled kernels
            cuda["cuequivariance_ops_torch"] = "imports"
        except Exception as exc:  # noqa: BLE001 - reported, not needed by the TorchForce path
            cuda["cuequivariance_ops_torch"] = f"{type(exc).__name__}: {exc}"
    return {"platforms": platforms, "plugin_load_failures": failures, "cuda": cuda, "extra_versions": versions}


def cuda_skip_reason(env: dict) -> str | None:
    if "CUDA" not in env["platforms"]:
        return "OpenMM has no CUDA platform (install the 'cuda' extra on a machine with an NVIDIA driver)"
    if not env["cuda"]["torch_cuda_available"]:
        return "torch sees no CUDA device"
    return None


# ---------------------------------------------------------------- parity
def energy_forces(system, spec, platform: str, precision: str | None = None):
    """(energy kJ/mol, forces kJ/mol/nm) of the spec's positions in a fresh Context."""
    properties = {"Precision": precision} if precision else None
    context = md_throughput.openmm_context(system, spec, spec["pos"], platform=platform, properties=properties)
    state = context.getState(getEnergy=True, getForces=True)
    return state.getPotentialEnergy()._value, np.asarray(state.getForces(asNumpy=True)._value)


def compare(reference, other, n_atoms: int, tolerance: dict | None = None) -> dict:
    (e_ref, f_ref), (e, f) = reference, other
    diff = {"energy_kj_mol": float(e), "reference_energy_kj_mol": float(e_ref),
            "energy_per_atom_kj_mol": abs(float(e) - float(e_ref)) / n_atoms,
            "force_max_rel": float(np.abs(f - f_ref).max() / np.abs(f_ref).max()),
            "force_rms_rel": float(np.sqrt(((f - f_ref) ** 2).mean() / (f_ref ** 2).mean()))}
    if tolerance is not None:
        diff["tolerance"] = tolerance
        diff["ok"] = all(diff[key] <= limit for key, limit in tolerance.items())
    return diff


def parity(spec, systems: dict, with_cuda: bool) -> dict:
    """CPU references and, with CUDA, CUDA vs CPU for each (MACE dtype, Context precision)."""
    n = spec["n_atoms"]
    cpu = {dtype: energy_forces(systems[dtype], spec, "CPU") for dtype in systems}
    out = {"n_atoms": n, "cpu_float32_vs_float64": compare(cpu["float64"], cpu["float32"], n)}
    if with_cuda:
        for dtype, precision in CASES:
            gpu = energy_forces(systems[dtype], spec, "CUDA", precision)
            out[f"cuda_{dtype}_{precision}_vs_cpu_{dtype}"] = compare(cpu[dtype], gpu, n, TOLERANCES[precision])
            if dtype != "float64":
                out[f"cuda_{dtype}_{precision}_vs_cpu_float64"] = compare(cpu["float64"], gpu, n)
    return out


def virial(spec, system, with_cuda: bool) -> dict:
    """The exact MACE virial (bar) through the pressure provider, CPU Context vs CUDA Context."""
    from openmm_physembed.properties.viscosity.pressure import (
        ExactMACEPressureTensor,
        torch_device_of,
    )

    def tensor(platform, precision=None):
        provider = ExactMACEPressureTensor(include_kinetic=False)
        provider.prepare_system(system)
        properties = {"Precision": precision} if precision else None
        context = md_throughput.openmm_context(system, spec, spec["pos"], platform=platform, properties=properties)
        state = context.getState(getPositions=True)
        if platform != "CPU":  # the first call moves the module to the GPU and profiles the graph
            provider.virial_bar(context, state)
        start = time.perf_counter()
        value = provider.virial_bar(context, state)
        return value, time.perf_counter() - start, torch_device_of(context)

    cpu, cpu_s, cpu_device = tensor("CPU")
    out = {"cpu_bar": cpu.tolist(), "cpu_seconds": cpu_s, "cpu_device": cpu_device}
    if with_cuda:
        gpu, gpu_s, gpu_device = tensor("CUDA", "double")
        rel = float(np.abs(gpu - cpu).max() / np.abs(cpu).max())
        out.update({"cuda_bar": gpu.tolist(), "cuda_seconds": gpu_s, "cuda_device": gpu_device,
                    "max_rel_diff": rel, "tolerance": 1e-8, "ok": rel <= 1e-8})
    return out


def cueq_parity(spec, model_path) -> dict:
    """Eager mace-torch on CUDA, e3nn vs cuEquivariance kernels: what ``--enable_cueq`` trains with
    (mace issues 1298 and 1469: cueq changed some models' energies). float64 both."""
    import torch

    try:
        import cuequivariance_torch  # noqa: F401
        from mace.cli.convert_e3nn_cueq import run
    except ImportError as exc:
        return {"skipped": f"cuEquivariance not installed ({exc})"}
    from openmm_physembed.potentials.mace_model import load_mace_model
    from openmm_physembed.units import KJ_PER_MOL_PER_EV, NM_PER_ANGSTROM

    e3nn = load_mace_model(model_path).to(torch.float64).to("cuda")
    previous = torch.get_default_dtype()
    try:  # mace's converter changes the default dtype
        cueq = run(load_mace_model(model_path).to(torch.float64), device="cuda", return_model=True).to("cuda")
    finally:
        torch.set_default_dtype(previous)
    results = {}
    for name, model in (("e3nn", e3nn), ("cueq", cueq)):
        out = model(md_throughput.mace_batch(spec, model, "cuda"), compute_force=True, training=False)
        results[name] = (float(out["energy"].detach().sum()) * KJ_PER_MOL_PER_EV,
                         out["forces"].detach().cpu().numpy() * KJ_PER_MOL_PER_EV / NM_PER_ANGSTROM)
    return compare(results["e3nn"], results["cueq"], spec["n_atoms"],
                   {"force_max_rel": 1e-6, "energy_per_atom_kj_mol": 1e-6})


# ---------------------------------------------------------------- throughput
def steps_per_s(step, max_steps: int, budget_s: float) -> tuple[float, int]:
    """Steps/s over as many steps as fit in ``budget_s`` (at most ``max_steps``, at least 1)."""
    n = 1
    if max_steps > 1:  # one step to size the timed run
        start = time.perf_counter()
        step(1)
        n = int(min(max_steps, max(1, budget_s / max(time.perf_counter() - start, 1e-6))))
    start = time.perf_counter()
    step(n)
    return n / (time.perf_counter() - start), n


class GPUMemory:
    """Peak torch allocation and device memory in use (MiB) over a block; zeros without CUDA."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        if self.enabled:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc):
        self.result = {}
        if self.enabled:
            import torch

            torch.cuda.synchronize()
            free, total = torch.cuda.mem_get_info()
            self.result = {"torch_peak_allocated_mib": torch.cuda.max_memory_allocated() / 2**20,
                           "torch_peak_reserved_mib": torch.cuda.max_memory_reserved() / 2**20,
                           "device_used_mib": (total - free) / 2**20}
        return False


def throughput(spec, ours_system_f32, model_path, platform: str, settings: argparse.Namespace) -> dict:
    """Steps/s of ours (TorchScript optimisation on, off) and openmm-ml, interleaved in rounds."""
    from openmm_physembed.torch_device import set_torchscript_optimization

    on_gpu = platform == "CUDA"
    properties = {"Precision": "mixed"} if on_gpu else None
    ours = md_throughput.openmm_simulation(ours_system_f32, spec, spec["pos"], platform=platform,
                                           properties=properties)
    engines = {"ours_jit_on": (ours, True), "ours_jit_off": (ours, False)}
    errors = {}
    try:
        engines["openmm-ml"] = (md_throughput.make_openmm_ml(spec, model_path, "float32", platform, properties), True)
    except Exception as exc:  # noqa: BLE001 - the peer failing is a result, not the end of the check
        errors["openmm-ml"] = f"{type(exc).__name__}: {exc}"
    rates = {name: [] for name in engines}
    steps = {name: [] for name in engines}
    memory = {}
    previous = set_torchscript_optimization(True)
    try:
        for round_ in range(settings.rounds):
            for name, (step, jit) in list(engines.items()):
                set_torchscript_optimization(jit)  # per thread: OpenMM evaluates forces in this one
                try:
                    with GPUMemory(on_gpu) as mem:
                        if round_ == 0:
                            step(settings.warmup)
                        rate, n = steps_per_s(step, settings.max_steps, settings.budget_s)
                except Exception as exc:  # noqa: BLE001
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    del engines[name]
                    continue
                rates[name].append(rate)
                steps[name].append(n)
                if round_ == 0:
                    memory[name] = mem.result
    finally:
        set_torchscript_optimization(previous)
    medians = {name: float(np.median(r)) for name, r in rates.items() if r}
    result = {"n_atoms": spec["n_atoms"], "platform": platform, "steps_per_s": medians, "all_rounds": rates,
              "timed_steps": steps, "gpu_memory": memory, "errors": errors}
    if "openmm-ml" in medians:
        result["ratios_vs_openmm_ml"] = {name: medians[name] / medians["openmm-ml"]
                                         for name in medians if name != "openmm-ml"}
    return result


# ---------------------------------------------------------------- main
def _section(results: dict, key: str, errors: list, function, *args):
    try:
        results[key] = function(*args)
    except Exception as exc:  # noqa: BLE001 - a check reports every failure, then goes on
        errors.append({"section": key, "error": f"{type(exc).__name__}: {exc}",
                       "traceback": traceback.format_exc(limit=6)})
        print(f"!! {key}: {type(exc).__name__}: {exc}", flush=True)
        results[key] = None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller systems (box ~500 atoms, 10 replicas, no 3000-atom box) and shorter timings")
    parser.add_argument("--channels", type=int, default=16, help="random model channels (as md_throughput.py)")
    parser.add_argument("--max-L", type=int, default=1)
    parser.add_argument("--r-max", type=float, default=5.0, help="random model cutoff (Angstrom)")
    parser.add_argument("--cpu-only", action="store_true", help="skip the CUDA half even where it could run")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default results/gpu_check.json, or results/gpu_check_cpu_only.json "
                             "when the CUDA half is skipped)")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    import torch  # noqa: F401 - before openmmtorch

    from openmm_physembed.io import write_json
    from openmm_physembed.testing import make_random_mace_model

    env = environment()
    skip = "--cpu-only given" if args.cpu_only else cuda_skip_reason(env)
    with_cuda = skip is None
    info = md_throughput.machine_info(torch.get_num_threads())
    print(f"# {info['cpu']} ({info['cores']} cores), Python {info['python']}")
    print("# " + ", ".join(f"{k} {v}" for k, v in {**info["versions"], **env["extra_versions"]}.items()))
    print(f"# OpenMM platforms: {', '.join(env['platforms'])}")
    for failure in env["plugin_load_failures"]:
        print(f"#   plugin load failure: {failure}")
    for device in env["cuda"]["devices"]:
        print(f"# GPU: {device['name']}, {device['memory_gib']} GiB, compute capability {device['capability']}")
    if "cuequivariance_ops_torch" in env["cuda"]:
        print(f"# cuequivariance_ops_torch: {env['cuda']['cuequivariance_ops_torch']}")
    print("# CUDA half: " + ("runs" if with_cuda else f"SKIPPED ({skip}); running the CPU half only"), flush=True)

    # Sizes: the GPU check is meant to take under 5 minutes; the CPU half under ~3 on 2 busy cores.
    box_atoms = [500] if args.quick else [1000]
    if with_cuda and not args.quick:
        box_atoms.append(3000)
    replicas = 10 if args.quick else 100
    settings = argparse.Namespace(
        rounds=2 if with_cuda else 1, warmup=10 if with_cuda else 0,
        max_steps=(100 if args.quick else 300) if with_cuda else 1,
        budget_s=(2.0 if args.quick else 5.0) if with_cuda else 0.0)
    build = argparse.Namespace(molecule="paracetamol", replicas=replicas, r_max_nm=args.r_max / 10.0, steps=1,
                               replica_steps=1, box_molecule="ec", box_atoms=box_atoms, box_density=1.32,
                               box_steps=1)
    model_path = make_random_mace_model(Path(tempfile.mkdtemp(prefix="gpu_check_")) / "random.model",
                                        r_max_angstrom=args.r_max, num_channels=args.channels, max_L=args.max_L)
    model_note = f"random ScaleShiftMACE {args.channels} channels, L={args.max_L}, 2 interactions, r_max {args.r_max} A"
    print(f"# model: {model_note}", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        specs = md_throughput.build_systems(build)
    specs.pop("molecule")
    box_names = [name for name in specs if name.startswith("box")]
    parity_names = [box_names[0], f"replicas{replicas}"]

    results = {"parity": {}, "virial": None, "cueq_eager": None, "throughput": {}}
    errors: list = []
    ours32 = {}
    for name in parity_names:
        spec = specs[name]
        systems = {}
        for dtype in ("float64", "float32"):
            _section(systems, dtype, errors, md_throughput.ours_system, spec, model_path, dtype)
        if None in systems.values():
            continue
        ours32[name] = systems["float32"]
        _section(results["parity"], name, errors, parity, spec, systems, with_cuda)
        if name == box_names[0]:
            _section(results, "virial", errors, virial, spec, systems["float64"], with_cuda)
            if with_cuda:
                _section(results, "cueq_eager", errors, cueq_parity, spec, model_path)
        del systems
        gc.collect()
    print_parity(results["parity"], results["virial"])
    if results.get("cueq_eager"):
        cueq = results["cueq_eager"]
        print("cuEquivariance vs e3nn, eager on CUDA: " + (cueq["skipped"] if "skipped" in cueq else
              f"dE/atom {cueq['energy_per_atom_kj_mol']:.1e} kJ/mol, dF rel {cueq['force_max_rel']:.1e} "
              f"({'ok' if cueq['ok'] else 'NO'})"), flush=True)

    platform = "CUDA" if with_cuda else "CPU"
    for name in box_names + [f"replicas{replicas}"]:
        spec = specs[name]
        if name not in ours32:
            _section(ours32, name, errors, md_throughput.ours_system, spec, model_path, "float32")
        if ours32.get(name) is None:
            continue
        _section(results["throughput"], name, errors, throughput, spec, ours32.pop(name), model_path, platform,
                 settings)
        gc.collect()
        if with_cuda:
            torch.cuda.empty_cache()
    print_throughput(results["throughput"], with_cuda)

    failed = [f"parity {name} {key}" for name, cases in results["parity"].items() if cases
              for key, case in cases.items() if isinstance(case, dict) and case.get("ok") is False]
    for key in ("virial", "cueq_eager"):
        if results.get(key) and results[key].get("ok") is False:
            failed.append(key)
    failed += [f"throughput {name} {engine}" for name, res in results["throughput"].items() if res
               for engine in res["errors"]]
    failed += [e["section"] for e in errors]
    seconds = time.perf_counter() - started
    out_path = args.out or Path(__file__).parent / "results" / ("gpu_check.json" if with_cuda
                                                               else "gpu_check_cpu_only.json")
    write_json(out_path, {
        "cuda": "ran" if with_cuda else f"skipped: {skip}", "machine": info, "environment": env,
        "model": model_note, "quick": args.quick, "settings": vars(settings), "results": results,
        "failed": failed, "errors": errors, "seconds": seconds,
        "notes": {"parity": "same System (module built on the CPU) in a CPU Context and a CUDA Context; "
                            "force_max_rel = max|dF| / max|F|",
                  "throughput": "Langevin 300 K, 0.5 fs, float32 MACE; CUDA Contexts in 'mixed' precision; "
                                "openmm-ml 1.8 MACE is a PythonForce (eager model, host neighbour list); "
                                "ours_jit_on/off: TorchScript graph-executor optimisation on/off in the MD thread",
                  "replicas": "ours: overlapping copies in one Context, edges within each copy; openmm-ml: the "
                              "copies spaced on a grid (extent + r_max apart) in one gas-phase system"}})
    print(f"\n{'CUDA half SKIPPED: ' + skip if not with_cuda else 'CUDA half ran'}; "
          f"{len(failed)} failed check(s){': ' + ', '.join(failed) if failed else ''}; {seconds:.0f} s")
    print(f"results: {out_path}")
    return 1 if failed else 0


def print_parity(parity_results: dict, virial_result: dict | None) -> None:
    print("\nparity (energy error per atom kJ/mol, force max|dF|/max|F|)")
    print(f"{'system':<14}{'atoms':>7}  {'comparison':<40}{'dE/atom':>11}{'dF rel':>11}  ok")
    for name, cases in parity_results.items():
        if not cases:
            continue
        for key, case in cases.items():
            if isinstance(case, dict):
                ok = {True: "yes", False: "NO", None: "-"}[case.get("ok")]
                print(f"{name:<14}{cases['n_atoms']:>7}  {key:<40}{case['energy_per_atom_kj_mol']:>11.2e}"
                      f"{case['force_max_rel']:>11.2e}  {ok}")
    if virial_result:
        line = f"virial (bar): CPU Context {virial_result['cpu_seconds']:.2f} s"
        if "cuda_bar" in virial_result:
            line += (f", CUDA Context {virial_result['cuda_seconds']:.2f} s on {virial_result['cuda_device']}, "
                     f"max rel diff {virial_result['max_rel_diff']:.1e} ({'ok' if virial_result['ok'] else 'NO'})")
        print(line, flush=True)


def print_throughput(throughput_results: dict, with_cuda: bool) -> None:
    engines = ("ours_jit_on", "ours_jit_off", "openmm-ml")
    print(f"\nsteps/s on {'CUDA (mixed)' if with_cuda else 'CPU'}, float32 MACE (higher is better)")
    print(f"{'system':<14}{'atoms':>7}" + "".join(f"{e:>14}" for e in engines)
          + f"{'best ours/ml':>14}" + (f"{'peak MiB ours/ml':>20}" if with_cuda else ""))
    for name, res in throughput_results.items():
        if not res:
            continue
        s = res["steps_per_s"]
        row = f"{name:<14}{res['n_atoms']:>7}" + "".join(f"{s[e]:>14.2f}" if e in s else f"{'error':>14}"
                                                          for e in engines)
        ratios = res.get("ratios_vs_openmm_ml")
        row += f"{max(ratios.values()):>14.2f}" if ratios else f"{'-':>14}"
        if with_cuda:
            mem = res["gpu_memory"]
            peaks = [mem.get(e, {}).get("torch_peak_allocated_mib") for e in ("ours_jit_on", "openmm-ml")]
            row += f"{' / '.join('-' if p is None else f'{p:.0f}' for p in peaks):>20}"
        print(row)
        for engine, error in res["errors"].items():
            print(f"  !! {engine}: {error}")


if __name__ == "__main__":
    sys.exit(main())
