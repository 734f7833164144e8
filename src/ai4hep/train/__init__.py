"""Training: configs, the Lightning module, atomic checkpoints and the run directory with its model card."""
