"""Open benchmark datasets made reproducibly with Pythia 8 + FastJet."""
