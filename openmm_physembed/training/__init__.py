"""Training MACE models with mace-torch's own training code."""
