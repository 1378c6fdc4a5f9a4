"""Tiny in-session fixtures for tests and benchmarks: a randomly initialised MACE model file.

Nothing here downloads anything. The model is the class ``mace_run_train`` writes
(``ScaleShiftMACE``, pickled with ``torch.save``), so every consumer of a real trained model
(mace-torch's ``MACECalculator``, openmm-ml's ``MLPotential('mace')``, our
:func:`~openmm_physembed.potentials.mace_force.add_mace_force`) reads it the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

# Isolated-atom energies (eV) of the order DFT/xTB gives, so that total energies of a test
# molecule look like a real model's (large, negative) and E0 bookkeeping is exercised.
_E0_EV = {1: -13.6, 3: -203.0, 5: -670.0, 6: -1029.0, 7: -1485.0, 8: -2042.0, 9: -2713.0,
          11: -4420.0, 14: -7870.0, 15: -9300.0, 16: -10830.0, 17: -12580.0, 35: -70050.0,
          53: -193000.0}


def make_random_mace_model(
    path,
    atomic_numbers: Sequence[int] = (1, 6, 7, 8, 9),
    r_max_angstrom: float = 5.0,
    num_channels: int = 16,
    max_L: int = 1,
    num_interactions: int = 2,
    correlation: int = 2,
    dtype: str = "float64",
    seed: int = 0,
    interaction_scale_ev: float = 1.0,
    avg_num_neighbors: float = 12.0,
    radial_MLP: Sequence[int] = (64, 64, 64),
    max_ell: int = 3,
    num_radial_basis: int = 8,
) -> Path:
    """Build a randomly initialised mace-torch ``ScaleShiftMACE`` and ``torch.save`` it to ``path``.

    Parameters mirror ``mace_run_train`` options (``--num_channels``, ``--max_L``,
    ``--num_interactions``, ``--correlation``, ``--r_max``); the architecture is its default
    (residual agnostic interaction blocks, 8 Bessel functions, polynomial cutoff p=5, silu gate,
    radial MLP [64, 64, 64], spherical harmonics to l = 3; ``radial_MLP``, ``max_ell`` and
    ``num_radial_basis`` change them as ``mace_run_train``'s options of the same names do). ``interaction_scale_ev`` is the ScaleShift ``scale`` (the std of
    per-atom interaction energies in a real model). With the default 1 eV a random model gives
    paracetamol forces of ~0.1-0.2 eV/A (measured): smooth and finite, but with no binding
    minimum, so a molecule drifts apart slowly in long MD; raise it for stiffer test dynamics.
    Isolated-atom energies (E0s) are realistic (H -13.6 eV, C -1029 eV, ...), so a molecule's
    total energy is large and negative like a real model's. The same ``seed`` always gives the same weights;
    the global torch RNG and default dtype are left unchanged.

    Returns the path written (parent folders are created; the write is atomic).
    """
    import warnings

    import mace  # noqa: F401  - mace before e3nn (mace patches e3nn on import)
    import torch
    from e3nn import o3
    from mace import modules

    from ..io import atomic_path

    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    zs = sorted({int(z) for z in atomic_numbers})
    torch_dtype = torch.float64 if dtype == "float64" else torch.float32
    atomic_energies = [_E0_EV.get(z, -100.0 * z) for z in zs]

    previous_dtype = torch.get_default_dtype()
    # e3nn's compile_mode decorators warn about TorchScript annotations on every construction.
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.manual_seed(seed)
        torch.set_default_dtype(torch_dtype)
        try:
            model = modules.ScaleShiftMACE(
                r_max=float(r_max_angstrom),
                num_bessel=int(num_radial_basis),
                num_polynomial_cutoff=5,
                max_ell=int(max_ell),
                interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
                interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
                num_interactions=num_interactions,
                num_elements=len(zs),
                hidden_irreps=o3.Irreps(
                    "+".join(f"{num_channels}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(max_L + 1))
                ),
                MLP_irreps=o3.Irreps("16x0e"),
                atomic_energies=torch.tensor(atomic_energies, dtype=torch.float64).numpy(),
                avg_num_neighbors=float(avg_num_neighbors),
                atomic_numbers=zs,
                correlation=correlation,
                gate=torch.nn.functional.silu,
                radial_MLP=[int(w) for w in radial_MLP],
                radial_type="bessel",
                atomic_inter_scale=float(interaction_scale_ev),
                atomic_inter_shift=0.0,
                heads=["Default"],
            )
        finally:
            torch.set_default_dtype(previous_dtype)
    model = model.to(torch_dtype).eval()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(model, tmp)
    return path
