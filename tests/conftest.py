"""Session-wide test settings.

Every test session gets its own GAFF parameter cache (PHYSEMBED_CACHE), so tests never depend
on what an earlier run left in ~/.cache and CI starts clean; worker processes inherit it.
"""

from __future__ import annotations

import os

import pytest

# One thread per library: the CI machine has 2 cores, and oversubscription makes tests slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENMM_CPU_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session", autouse=True)
def _session_gaff_cache(tmp_path_factory):
    if "PHYSEMBED_TEST_CACHE" in os.environ:  # reuse between local runs when asked
        os.environ["PHYSEMBED_CACHE"] = os.environ["PHYSEMBED_TEST_CACHE"]
    else:
        os.environ["PHYSEMBED_CACHE"] = str(tmp_path_factory.mktemp("physembed_cache"))
    yield
