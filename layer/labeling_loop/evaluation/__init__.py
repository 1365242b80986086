"""Evaluating model versions and the run's own figures: measures with their intervals, and whether a
new model version is really better than the current one (`promotion`)."""
