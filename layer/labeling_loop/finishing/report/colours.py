"""The two colours the report draws boxes in: the thumbnails draw with them and report.html's legend
names them. Apart from the thumbnails (which need Pillow), so that rendering report.html from
report.json needs no imaging library (the operator CLI renders it where Pillow is not installed)."""

from __future__ import annotations

PREDICTED_COLOUR = (230, 120, 0)  # orange: the model
REVIEWED_COLOUR = (0, 160, 80)  # green: people
