"""Fixtures for tests, benchmarks and notebooks: tiny models, toy liquids, exact stand-ins.

Nothing here downloads anything or is needed by the pipeline itself.
"""

from .energy_checks import nve_energy_excursion
from .mace_models import make_random_mace_model
from .stand_ins import linear_response_density_run
from .toy_liquids import argon_with_attraction

__all__ = ["argon_with_attraction", "linear_response_density_run", "make_random_mace_model",
           "nve_energy_excursion"]
