"""Manifest phase: reviewed records -> Custom Labels manifest lines (`lines`), the documented rules
they must pass (`rules`), the run's manifest, skips and report (`build`), and model quality
against what people reviewed (`quality`)."""
