"""Running OpenMM simulations: platforms, checkpointed runs, array recorders."""
