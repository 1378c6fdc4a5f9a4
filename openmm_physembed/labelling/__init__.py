"""Labelling structures with energies and forces (GFN2-xTB)."""
