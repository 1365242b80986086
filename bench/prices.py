"""Prices used to estimate AWS cost: one list, in the layer (labeling_loop/finishing/report/prices.py), shared
by the run report's cost section and the benchmarks."""

from labeling_loop.finishing.report.prices import (
    ALL,
    CUSTOM_LABELS_IU_HOUR,
    CUSTOM_LABELS_TRAINING_HOUR,
    GROUND_TRUTH_OBJECT,
    LAMBDA_GB_SECOND,
    LAMBDA_REQUEST,
    S3_GET,
    STEP_FUNCTIONS_TRANSITION,
    Price,
    price_table,
)

__all__ = [
    "ALL",
    "CUSTOM_LABELS_IU_HOUR",
    "CUSTOM_LABELS_TRAINING_HOUR",
    "GROUND_TRUTH_OBJECT",
    "LAMBDA_GB_SECOND",
    "LAMBDA_REQUEST",
    "S3_GET",
    "STEP_FUNCTIONS_TRANSITION",
    "Price",
    "price_table",
]
