"""`ai4hep train`: fit a config's model through its kind and write the run directory (ai4hep.run)."""
