"""The field's standard metrics: ROC, AUC, rejection at fixed efficiency with binomial uncertainties."""
