"""Liquid properties: density, a1 fitting, pressure tensor, Green-Kubo viscosity."""
