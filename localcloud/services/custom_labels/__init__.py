"""Emulated Amazon Rekognition Custom Labels: the API (`service`), the model version's predictions
(`model`) and how DetectCustomLabels reads an image (`images`)."""

from localcloud.services.custom_labels.model import CustomLabelsConfig, TaskType
from localcloud.services.custom_labels.service import CustomLabelsEmulator

__all__ = ["CustomLabelsConfig", "CustomLabelsEmulator", "TaskType"]
