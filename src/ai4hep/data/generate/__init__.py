"""Event generation (pythia), parametric detector response (detector), clustering and jet content (jets)."""
