"""The stability benchmark protocol: the published defaults and the named CPU presets.

``StabilityProtocol()`` is the published protocol (GPU-sized), as ``train_mace``'s default MACE
preset is the paper's; the CPU-sized runs are the named presets of :data:`PRESETS`. Each preset
names the MACE training preset it trains (``training_preset``): the stability preset ``quick``
trains the MACE preset ``cpu``, not the MACE preset ``quick`` (see its comment below).
Change fields with :func:`dataclasses.replace`, e.g. ``replace(protocol, test_md=replace(
protocol.test_md, temperature_K=600.0))``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

from ..simulation.dynamics import Dynamics

# The test MD of the model of training seed k runs with seed + 100 k (one integrator per model:
# its starts are replicas in one Context).
_TEST_SEED_STRIDE = 100


@dataclass(frozen=True)
class StabilityProtocol:
    """Every number of the published protocol (Hu, Hou & Jiang) as a field.

    Data: GAFF MD under ``reference_md`` (300 K, 1 fs, frame every 100 steps), ``n_frames`` random frames labelled
    with GFN2-xTB; baseline = those plain frames, augmented = ``n_frames - n_validation`` frames
    modified by bond-length sampling + ``n_validation`` plain frames for validation. Both
    datasets validate on the same plain frames. Models: MACE with ``training_preset`` and every
    seed. Test: ``n_starts`` random GAFF-trajectory structures per model, Langevin MD under
    ``test_md`` for ``test_ps``; collapse = a bond off its GAFF r0 by more
    than ``bond_tolerance_nm`` or two non-bonded atoms closer than ``overlap_distance_nm``.
    The OpenMM platform of the test MD is ``test_md.platform`` (None: automatic).

    The defaults are the published protocol (``PRESETS["paper"]``); the CPU-sized protocols are
    the named presets ``quick`` and ``cpu`` (:func:`get_protocol`).
    """

    name: str = "paper"
    reference_md: Dynamics = Dynamics(temperature_K=300.0, timestep_fs=1.0, seed=2024)
    reference_ps: float = 1000.0
    frame_interval: int = 100
    n_frames: int = 50
    n_validation: int = 5
    training_preset: str = "paper"
    training_overrides: dict = field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    n_starts: int = 20
    test_md: Dynamics = Dynamics(temperature_K=800.0, timestep_fs=1.0)  # its seed: seed + 100 x training seed
    test_ps: float = 100.0
    check_interval: int = 10
    bond_tolerance_nm: float = 0.05
    overlap_distance_nm: float = 0.06
    md_dtype: str | None = None  # MACE precision of the test MD; None: the model file's own
    # Bond-angle bends per augmented structure (sampling/angle_sampling.py); 0 = the paper's
    # bond-length sampling alone. The widths follow GAFF's angle constants at temperature_K.
    angles_per_structure: int = 0
    # Reserve a structure for every bond type (and bendable angle type) before the 1/k draws
    # (sampling/coverage.py); False = the paper's random draw, which can leave stiff, rare types
    # unstretched (the augmented models then break exactly there).
    cover_every_type: bool = False
    charge_method: str = "bcc"
    seed: int = 2024
    # What a preset is for, for --help and the console; not part of the experiment.
    purpose: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        from ..checks import MD_SEED_MAX, SEED_MAX, check_seed, check_seeds
        from ..errors import StabilityError

        seeds = check_seeds(self.seeds, StabilityError)
        check_seed(self.seed, StabilityError, name="the protocol seed")
        # The largest test-MD seed must still fit OpenMM's C int, or the last model's MD fails
        # after every model has been trained.
        if self.test_md_seed(max(seeds)) > MD_SEED_MAX:
            largest = (MD_SEED_MAX - self.seed) // _TEST_SEED_STRIDE
            raise StabilityError(f"training seeds up to {min(largest, SEED_MAX)} fit the test MD's seeds "
                                 f"(seed {self.seed} + {_TEST_SEED_STRIDE} x training seed, at most "
                                 f"{MD_SEED_MAX}); got {max(seeds)}")
        object.__setattr__(self, "seeds", seeds)

    def test_md_seed(self, training_seed: int) -> int:
        """The Langevin seed of the test MD of the model trained with ``training_seed``."""
        return self.seed + _TEST_SEED_STRIDE * int(training_seed)

    @property
    def temperature_K(self) -> float:
        """The test temperature."""
        return self.test_md.temperature_K

    @property
    def test_steps(self) -> int:
        return int(round(self.test_ps * 1000.0 / self.test_md.timestep_fs))

    @property
    def reference_steps(self) -> int:
        return int(round(self.reference_ps * 1000.0 / self.reference_md.timestep_fs))

    def describe(self) -> str:
        """One line: the preset, the MACE preset it trains and the size of the test."""
        seeds = len(self.seeds)
        extras = [f"{self.angles_per_structure} angle bend(s) per augmented structure" if self.angles_per_structure
                  else "bond-length sampling alone", "every bond/angle type covered" if self.cover_every_type
                  else "the paper's random draw"]
        # A preset's purpose (its run time, say) no longer holds once a field was changed.
        purpose = self.purpose if self.purpose and PRESETS.get(self.name) == self else ""
        return (f"{self.name}: MACE preset {self.training_preset!r}, {seeds} seed{'s' * (seeds != 1)} x "
                f"{self.n_starts} starts x {self.test_ps:g} ps at {self.temperature_K:g} K; " + ", ".join(extras)
                + (f" ({purpose})" if purpose else ""))

    def with_changes(self, temperature_K: float | None = None, **changes) -> "StabilityProtocol":
        """Deprecated: use :func:`dataclasses.replace` (the test temperature is ``test_md.temperature_K``)."""
        warnings.warn("StabilityProtocol.with_changes is deprecated; use dataclasses.replace(protocol, ...) and "
                      "replace(protocol.test_md, temperature_K=...) for the test temperature",
                      DeprecationWarning, stacklevel=2)
        test_md = self.test_md if temperature_K is None else replace(self.test_md, temperature_K=temperature_K)
        return replace(self, test_md=test_md, **{k: v for k, v in changes.items() if v is not None})


PRESETS: dict[str, StabilityProtocol] = {
    # The published protocol, for a GPU: 5 seeds x 20 starts x 100 ps per dataset.
    "paper": StabilityProtocol(purpose="the published protocol, for a GPU"),
    # About 15 min on 2 CPU cores: the 'cpu' MACE preset (~4 min per model, two at a time), 2 seeds
    # x 10 starts x 5 ps = 100 trajectory-ps per arm. Too small to separate the arms (~1.5 expected
    # baseline collapses at the published hazard): it shows the pipeline, the 'cpu' preset the
    # effect. It trains the MACE preset 'cpu', not the MACE preset 'quick': the 30-epoch 'quick'
    # MACE preset leaves models so under-trained (force RMSE ~110-160 meV/A) that both datasets
    # collapse within 2 ps and nothing is learnt.
    # float32 MD on the CPU, as measured (the generic default is the model file's own dtype).
    "quick": StabilityProtocol(name="quick", training_preset="cpu", seeds=(0, 1), n_starts=10, test_ps=5.0,
                               angles_per_structure=1, cover_every_type=True, md_dtype="float32",
                               purpose="~15 min on 2 CPU cores; shows the pipeline, too small to separate the arms"),
    # Sized at the model level, the unit of replication (benchmarks/stability/model_level_design.py,
    # results/stability/design/): per-model hazards of the committed baseline arms vary with a
    # gamma CV^2 of 0.75-1.06, so the trajectory-level test of 4 models x 20 starts calls equal arms
    # different 37 % of the time at p < 0.01, and no 4 + 4 permutation test can reach 0.01. 10 models x
    # 8 starts x 12.5 ps keeps today's 1000 trajectory-ps per arm (the 'cpu' MACE preset runs ~0.69
    # trajectory-ps/s on 2 cores) with 2.5x the training (4.4 min per model, two at a time): ~1.5 h
    # per molecule; exact permutation p down to 1e-5, power 0.87 against a 10x lower hazard at
    # CV^2 0.86 and the median baseline hazard 0.096/ps (0.99 against 30x), size 0.011 +- 0.003.
    # The augmented arm bends one bonded angle per structure (sampling/angle_sampling.py) and
    # reserves a structure for every bond and bendable angle type (sampling/coverage.py). README
    # "Stability results". float32 MD, as measured.
    "cpu": StabilityProtocol(name="cpu", training_preset="cpu", seeds=tuple(range(10)), n_starts=8, test_ps=12.5,
                             angles_per_structure=1, cover_every_type=True, md_dtype="float32",
                             purpose="sized to separate the arms on 2 CPU cores, ~1.5 h per molecule"),
}


def get_protocol(name: str) -> StabilityProtocol:
    from ..errors import StabilityError

    try:
        return PRESETS[name]
    except KeyError:
        raise StabilityError(f"unknown stability preset {name!r}; choose {', '.join(PRESETS)}") from None
