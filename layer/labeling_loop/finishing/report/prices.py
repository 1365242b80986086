"""Prices used to estimate AWS cost (us-east-1, on-demand): the run report's cost section and the
benchmarks (bench/prices.py re-exports them). Every number names the page it belongs to;
`confirmed` says whether docs/aws-facts.md confirms it (§1.6, §3.8, §4.7; open items in §8).
Unconfirmed numbers are the commonly quoted list prices: check the page before relying on them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    url: str
    confirmed: bool
    note: str = ""


STEP_FUNCTIONS_TRANSITION = Price(
    0.025 / 1000,
    "state transition (Standard)",
    "https://aws.amazon.com/step-functions/pricing/",
    True,
    "docs/aws-facts.md §4.7: $0.025 per 1,000 transitions, retries counted; 4,000 free per month",
)
LAMBDA_REQUEST = Price(
    0.20 / 1_000_000,
    "request",
    "https://aws.amazon.com/lambda/pricing/",
    False,
    "$0.20 per 1M requests; not in docs/aws-facts.md",
)
LAMBDA_GB_SECOND = Price(
    0.0000166667,
    "GB-second (x86)",
    "https://aws.amazon.com/lambda/pricing/",
    False,
    "not in docs/aws-facts.md",
)
CUSTOM_LABELS_IU_HOUR = Price(
    4.00,
    "inference-unit hour",
    "https://aws.amazon.com/rekognition/pricing/",
    False,
    "docs/aws-facts.md §1.6, §8: $4/IU-hour quoted by an aws-samples README, not read on the pricing page",
)
CUSTOM_LABELS_TRAINING_HOUR = Price(
    1.00,
    "training hour",
    "https://aws.amazon.com/rekognition/pricing/",
    False,
    "docs/aws-facts.md §1.6, §8: $1/training hour quoted by an aws-samples README, not read on the pricing page",
)
GROUND_TRUTH_OBJECT = Price(
    0.08,
    "labeled object (first 50,000 per month)",
    "https://aws.amazon.com/sagemaker/groundtruth/pricing/",
    False,
    "docs/aws-facts.md §3.8, §8: charged per object; the rate was not retrieved. Private workforce adds no worker fee",
)
S3_GET = Price(
    0.0004 / 1000,
    "GET request (S3 Standard)",
    "https://aws.amazon.com/s3/pricing/",
    False,
    "not in docs/aws-facts.md",
)

ALL = {
    "step_functions_transition": STEP_FUNCTIONS_TRANSITION,
    "lambda_request": LAMBDA_REQUEST,
    "lambda_gb_second": LAMBDA_GB_SECOND,
    "custom_labels_iu_hour": CUSTOM_LABELS_IU_HOUR,
    "custom_labels_training_hour": CUSTOM_LABELS_TRAINING_HOUR,
    "ground_truth_object": GROUND_TRUTH_OBJECT,
    "s3_get": S3_GET,
}


def price_table() -> str:
    rows = [
        "| item | USD | per | confirmed in docs/aws-facts.md | source |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, p in ALL.items():
        rows.append(
            f"| {name} | {p.usd:.10g} | {p.unit} | {'yes' if p.confirmed else 'no (unconfirmed)'} | {p.url} |"
        )
    return "\n".join(rows) + "\n"
