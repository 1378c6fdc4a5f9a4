"""Bond-angle bending on top of the bond-length sampling (an extension, off by default).

Why: the paper's method changes bond lengths only (and turns terminal groups about their axis),
so the training set spans the same bond angles as the 300 K reference frames. At the 800 K of
the stability test GAFF MD of paracetamol has, in 99 % of its frames, some bonded angle outside
that range (about six at a time, in both arms: ``benchmarks/results/stability/paracetamol/
coverage_800k.json``), and every augmented collapse of the CPU-sized model passed through angles
far outside it. A 256-channel, L = 3 MACE (the paper's) extrapolates there; the 16-channel, L = 0
model the CPU preset can afford does not.

Algorithm (fields of :class:`AngleSamplingParameters`), after the bond modification of a
structure:

1. Angle type = the three force-field atom types, ends sorted (``c3-c-o``); force constant k
   from the force field's ``HarmonicAngleForce`` (kJ/mol/rad^2, E = k/2 (theta - theta0)^2).
2. Per type, theta_min, theta_mean, theta_max over the reference frames. The thermal width of
   the angle at the *test* temperature is sigma = sqrt(kB T / k); the closing segment is
   ``[theta_mean - n_sigma sigma, theta_min]`` and the opening segment
   ``[theta_max, theta_mean + n_sigma sigma]`` (collapsed onto theta_min / theta_max when the
   frames already reach that far; clipped to ``[min_degrees, max_degrees]``). Like the bond
   stretch, the reach follows the force constant: soft angles (H-C-H, k ~ 290) are bent
   further than stiff ones (ring angles, k ~ 560).
3. Bendable angles: i-j-k with at least one arm (j-i or j-k) outside every ring. The side
   beyond that arm (the atoms reachable from i, resp. k, once the arm is cut; the smaller side
   when both arms qualify) turns rigidly about the axis through j normal to the i-j-k plane.
   Every bond length, including the bond just modified, is kept.
4. ``angles_per_structure`` distinct angles per structure, each drawn with probability
   ``1/k_eff`` (``k_eff = terminal_k_factor k`` when i or k is a terminal atom, as for bonds),
   the segment closing : opening = 1 : 1, the new angle uniform in it.
5. The geometry check of the bond sampling (every pair two or more bonds apart at least its
   equilibrium length + margin) applies after each bend; a rejected bend is dropped and another
   angle drawn, up to ``max_attempts`` draws; a structure keeps its bond modification even when
   no bend passes (recorded as fewer bends).
6. Coverage by design (with the bond sampling's ``cover_every_type``): every bendable angle type
   gets one structure whose first bend is of that type (:mod:`.coverage`); the other bends
   follow step 4. A scheduled type that finds no free angle or no bend that passes moves on to
   the next structure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np

from ..errors import SamplingError
from . import geometry
from .clash import close_pairs

CLOSING = "closing"
OPENING = "opening"
# Boltzmann constant, kJ/mol/K (CODATA 2018 via scipy.constants, rounded as OpenMM's MOLAR_GAS_CONSTANT_R).
_KB_KJ_MOL_K = 0.008314462618


@dataclass(frozen=True)
class AngleSamplingParameters:
    """Constants of the angle bending; ``angles_per_structure = 0`` switches it off (the paper's method)."""

    angles_per_structure: int = 0
    temperature_K: float = 800.0
    n_sigma: float = 3.0
    closing_weight: float = 1.0
    opening_weight: float = 1.0
    min_degrees: float = 60.0
    max_degrees: float = 178.0
    max_attempts: int = 20

    def __post_init__(self) -> None:
        problems = []
        if self.angles_per_structure < 0:
            problems.append("angles_per_structure must be >= 0")
        if self.temperature_K <= 0 or self.n_sigma < 0:
            problems.append("temperature_K must be > 0 and n_sigma >= 0")
        if self.closing_weight < 0 or self.opening_weight < 0 or self.closing_weight + self.opening_weight <= 0:
            problems.append("closing_weight and opening_weight must be >= 0 with a positive sum")
        if not 0.0 < self.min_degrees < self.max_degrees <= 180.0:
            problems.append("need 0 < min_degrees < max_degrees <= 180")
        if self.max_attempts < 1:
            problems.append("max_attempts must be >= 1")
        if problems:
            raise SamplingError("invalid angle sampling parameters: " + "; ".join(problems))

    @property
    def enabled(self) -> bool:
        return self.angles_per_structure > 0

    @property
    def closing_probability(self) -> float:
        return self.closing_weight / (self.closing_weight + self.opening_weight)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AngleRange:
    """Sampling range of one angle type (degrees; k in kJ/mol/rad^2 with E = k/2 (theta - theta0)^2)."""

    angle_type: str
    k: float
    sigma_degrees: float
    n_angles: int
    theta_min: float
    theta_mean: float
    theta_max: float
    closing: tuple[float, float]
    opening: tuple[float, float]

    def segment(self, name: str) -> tuple[float, float]:
        return {CLOSING: self.closing, OPENING: self.opening}[name]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AnglePlan:
    """How one bonded angle i-j-k bends: its type, weight and the atoms that turn about j."""

    atoms: tuple[int, int, int]
    angle_type: str
    k_eff: float
    moved: tuple[int, ...]  # turned rigidly about the axis through the vertex
    moved_end: int  # i or k: the end atom whose side moves


@dataclass(frozen=True)
class AngleModification:
    atoms: tuple[int, int, int]
    angle_type: str
    old_degrees: float
    new_degrees: float
    segment: str
    moved_atoms: tuple[int, ...]
    scheduled: bool = False  # drawn to cover its angle type (coverage by design), not by 1/k

    def to_dict(self) -> dict:
        return asdict(self)


def angle_type_name(types: Sequence[str], i: int, j: int, k: int) -> str:
    a, c = sorted((types[i], types[k]))
    return f"{a}-{types[j]}-{c}"


def angle_degrees(positions: np.ndarray, i: int, j: int, k: int) -> float:
    return float(geometry.angle_values_deg(positions, np.array([[i, j, k]]))[0])


def force_field_angle_constants(system) -> dict[tuple[int, int, int], float]:
    """``{(i, j, k): k}`` (i < k, kJ/mol/rad^2) from the System's ``HarmonicAngleForce``."""
    import openmm

    constants = {}
    for force in system.getForces():
        if isinstance(force, openmm.HarmonicAngleForce):
            for n in range(force.getNumAngles()):
                i, j, k, _theta0, stiffness = force.getAngleParameters(n)
                i, k = min(i, k), max(i, k)
                constants[(i, j, k)] = float(stiffness.value_in_unit(stiffness.unit))
    if not constants:
        raise SamplingError("the force field System has no HarmonicAngleForce: angle sampling needs angle constants")
    return constants


def gaff_angle_constants(molecule, charge_method: str = "bcc", cache_dir=None) -> dict[tuple[int, int, int], float]:
    """The angle constants of ``molecule``'s GAFF System (:func:`force_field_angle_constants`).

    A step of its own because it parameterises the molecule (antechamber; AM1-BCC charges by
    default, cached): the sampler takes the constants, it does not make them. Angle constants do
    not depend on the charges, so ``charge_method`` only picks which cached parameterisation is used.
    """
    from ..chem.gaff import parameterize

    return force_field_angle_constants(
        parameterize(molecule, charge_method=charge_method, cache_dir=cache_dir).create_system())


def angle_ranges(types: Sequence[str], frames_nm: np.ndarray, constants: Mapping[tuple[int, int, int], float],
                 parameters: AngleSamplingParameters) -> dict[str, AngleRange]:
    """Per angle type: k, thermal width at the test temperature, observed range and both segments."""
    by_type: dict[str, list[tuple[int, int, int]]] = {}
    for atoms in constants:
        by_type.setdefault(angle_type_name(types, *atoms), []).append(atoms)
    ranges = {}
    for name, members in sorted(by_type.items()):
        values = geometry.angle_values_deg(frames_nm, np.array(members)).ravel()
        k = float(np.mean([constants[a] for a in members]))
        sigma = float(np.degrees(np.sqrt(_KB_KJ_MOL_K * parameters.temperature_K / k)))
        low, mean, high = float(values.min()), float(values.mean()), float(values.max())
        reach_low = max(parameters.min_degrees, mean - parameters.n_sigma * sigma)
        reach_high = min(parameters.max_degrees, mean + parameters.n_sigma * sigma)
        ranges[name] = AngleRange(name, k, sigma, len(members), low, mean, high,
                                  closing=(min(reach_low, low), low), opening=(high, max(reach_high, high)))
    return ranges


def plan_angles(types: Sequence[str], bonds: Sequence[tuple[int, int]], constants: Mapping[tuple[int, int, int], float],
                terminal: frozenset[int], terminal_k_factor: float) -> tuple[AnglePlan, ...]:
    """Every bendable angle (one arm outside all rings) with its weight and moving side."""
    n_atoms = len(types)
    rings = geometry.ring_bonds(n_atoms, bonds)
    plans = []
    for (i, j, k), stiffness in sorted(constants.items()):
        sides = []
        for end in (i, k):
            arm = (min(end, j), max(end, j))
            if arm in rings:
                continue
            side = geometry.component(end, n_atoms, bonds, cut=[arm])
            if j not in side:
                sides.append((len(side), end, side))
        if not sides:
            continue
        _, end, side = min(sides)
        k_eff = terminal_k_factor * stiffness if (i in terminal or k in terminal) else stiffness
        plans.append(AnglePlan((i, j, k), angle_type_name(types, i, j, k), float(k_eff), tuple(sorted(side)), end))
    return tuple(plans)


def set_angle(positions: np.ndarray, plan: AnglePlan, new_degrees: float) -> np.ndarray:
    """Turn the plan's moving side about the vertex, in the i-j-k plane, to ``new_degrees``."""
    i, j, k = plan.atoms
    u, v = positions[i] - positions[j], positions[k] - positions[j]
    normal = np.cross(u, v)
    if np.linalg.norm(normal) < 1e-9 * np.linalg.norm(u) * np.linalg.norm(v):  # linear: any normal will do
        normal = np.cross(u, [1.0, 0.0, 0.0] if abs(u[0]) < 0.9 * np.linalg.norm(u) else [0.0, 1.0, 0.0])
    change = new_degrees - angle_degrees(positions, i, j, k)
    # Turning v about u x v opens the angle; turning u about it closes it.
    sign = 1.0 if plan.moved_end == k else -1.0
    return geometry.rotate_about_axis(positions, plan.moved, positions[j], normal, sign * change)


def _try_bend(positions, plan: AnglePlan, ranges, thresholds, parameters, rng, scheduled: bool = False):
    """One bend of ``plan`` (segment and angle drawn); None when the geometry check refuses it."""
    segment = CLOSING if rng.random() < parameters.closing_probability else OPENING
    low, high = ranges[plan.angle_type].segment(segment)
    new = float(rng.uniform(low, high))
    old = angle_degrees(positions, *plan.atoms)
    trial = set_angle(positions, plan, new)
    if close_pairs(trial, thresholds):
        return None
    return trial, AngleModification(plan.atoms, plan.angle_type, old, new, segment, plan.moved, scheduled)


def bend_structure(positions: np.ndarray, plans: Sequence[AnglePlan], ranges: Mapping[str, AngleRange],
                   thresholds: np.ndarray, parameters: AngleSamplingParameters, rng: np.random.Generator,
                   scheduled_types: Sequence[str] = ()
                   ) -> tuple[np.ndarray, tuple[AngleModification, ...], int, list[str]]:
    """Scheduled bends first, then up to ``angles_per_structure`` in all by 1/k draws.

    Returns (positions, bends, rejected draws, scheduled types this structure could not take).
    """
    done: list[AngleModification] = []
    tried: set[int] = set()
    rejected = 0
    deferred: list[str] = []

    def accept(plan, bend):
        done.append(bend)
        # A later bend at the same vertex would change this angle again.
        tried.update(n for n, p in enumerate(plans) if p.atoms[1] == plan.atoms[1])

    for angle_type in scheduled_types:
        bent = False
        for _ in range(parameters.max_attempts):
            members = [n for n, p in enumerate(plans) if p.angle_type == angle_type and n not in tried]
            if not members:
                break
            index = members[int(rng.integers(len(members)))]
            outcome = _try_bend(positions, plans[index], ranges, thresholds, parameters, rng, scheduled=True)
            if outcome is None:
                rejected += 1
                if len(members) > 1:
                    tried.add(index)  # another angle of the type may fit where this one clashed
                continue
            positions = outcome[0]
            accept(plans[index], outcome[1])
            bent = True
            break
        if not bent:
            deferred.append(angle_type)
    already = len(tried)  # the attempt budget of the 1/k draws, as without a schedule
    while len(done) < parameters.angles_per_structure and len(tried) < len(plans) \
            and len(tried) - already < parameters.max_attempts:
        weights = np.array([0.0 if n in tried else 1.0 / p.k_eff for n, p in enumerate(plans)])
        index = int(rng.choice(len(plans), p=weights / weights.sum()))
        tried.add(index)
        outcome = _try_bend(positions, plans[index], ranges, thresholds, parameters, rng)
        if outcome is None:
            rejected += 1
            continue
        positions = outcome[0]
        accept(plans[index], outcome[1])
    return positions, tuple(done), rejected, deferred


__all__ = [
    "AngleModification",
    "AnglePlan",
    "AngleRange",
    "AngleSamplingParameters",
    "angle_degrees",
    "angle_ranges",
    "bend_structure",
    "force_field_angle_constants",
    "gaff_angle_constants",
    "plan_angles",
    "set_angle",
]
