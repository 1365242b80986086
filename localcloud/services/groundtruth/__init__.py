"""Emulated SageMaker Ground Truth: labeling jobs (`jobs`), what CreateLabelingJob checks
(`validation`), the emulated workforce and task Lambdas (`workers`) and what a job writes
(`output`)."""

from localcloud.services.groundtruth.jobs import GroundTruthConfig, GroundTruthEmulator

__all__ = ["GroundTruthConfig", "GroundTruthEmulator"]
