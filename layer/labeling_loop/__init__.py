"""Shared code of the labeling-loop functions, deployed as one Lambda layer (/opt/python)."""
