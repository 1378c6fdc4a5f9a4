"""Molecules, GAFF parameters, bond typing and liquid boxes."""
