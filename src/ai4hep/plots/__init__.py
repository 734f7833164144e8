"""Plots in the puma style: ROC curves with a ratio panel, rejection vs jet pT, confusion matrices."""
