"""Import pymbar without its import-time banners (missing JAX, timeseries caveat) in user output."""

from __future__ import annotations

import logging


def quiet_pymbar() -> None:
    logging.getLogger("pymbar").setLevel(logging.ERROR)
