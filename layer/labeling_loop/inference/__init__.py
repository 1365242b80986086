"""Inference phase: list and batch the images, claim them (incremental runs), start/stop the model
under leases shared by overlapping runs, and run DetectCustomLabels over each batch."""
