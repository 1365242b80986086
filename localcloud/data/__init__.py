"""What the local cloud knows and feeds in: the ground truth (one model, one manifest parser),
synthetic demo images and the corpus of bad images."""
