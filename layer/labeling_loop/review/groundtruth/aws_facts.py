"""What Ground Truth documents that the loop and the local cloud's emulator of Ground Truth both
rely on: one copy of each fact, with its docs/aws-facts.md section. The loop builds its jobs with
them (jobs.py); the emulator (localcloud/services/groundtruth/validation.py) refuses a
CreateLabelingJob request that breaks them, as AWS does. Both read the same copy because both stand
for the same thing, AWS's published values; that the copy matches what AWS publishes is checked
against docs/aws-facts.md by tests/contract/test_groundtruth_facts.py, not by a second copy."""

from __future__ import annotations

# Accounts that own the built-in PRE-<Type> / ACS-<Type> Lambdas, one per region; the same account
# serves every task type of a region (docs/aws-facts.md §3.3), from the AnnotationConsolidationConfig and
# HumanTaskConfig API reference:
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AnnotationConsolidationConfig.html
AWS_TASK_LAMBDA_ACCOUNTS: dict[str, str] = {
    "us-east-1": "432418664414",
    "us-east-2": "266458841044",
    "us-west-2": "081040173940",
    "ca-central-1": "918755190332",
    "eu-west-1": "568282634449",
    "eu-west-2": "487402164563",
    "eu-central-1": "203001061592",
    "ap-northeast-1": "477331159723",
    "ap-northeast-2": "845288260483",
    "ap-south-1": "565803892007",
    "ap-southeast-1": "377565633583",
    "ap-southeast-2": "454466003867",
}

# The `<Type>` of the built-in tasks' Lambdas (docs/aws-facts.md §3.3).
BUILTIN_TASK_TYPES = frozenset(
    {
        "BoundingBox",
        "AdjustmentBoundingBox",
        "VerificationBoundingBox",
        "ImageMultiClass",
        "ImageMultiClassMultiLabel",
        "PassThrough",
    }
)

# Label categories of a bounding-box job through the API (Ground Truth quotas, docs/aws-facts.md
# §3.1): 50. Conflict (docs/aws-facts.md §8): DescribeLabelingJob's doc says "Box bounding labeling
# jobs (all): 10 labels" and `crowd-bounding-box`'s `labels` says "Limit: 10". The documented API
# quota (50) is the one followed; the stricter figure is left to a real-account test.
MAX_DETECTION_LABELS = 50
