"""Who may assume the template's roles, as IAM would decide it from each role's trust policy and the
condition keys the assuming service sends (docs/aws-facts.md §5.5). moto never evaluates a trust
policy, so without this a condition on a key the service does not send (a role no job could ever
assume on AWS) would pass every local test.

The keys each service sends are the ones its documentation names for the roles it assumes; a key not
documented for a service is not sent here, so a trust policy may rely only on documented keys:

- Step Functions: `aws:SourceAccount`, `aws:SourceArn` = the state machine's ARN;
- EventBridge Scheduler: `aws:SourceAccount`, `aws:SourceArn` = the schedule group's ARN;
- SageMaker AI: `aws:SourceAccount` (documented for SageMaker AI as a whole; the `aws:SourceArn` of a
  Ground Truth labeling job is documented nowhere, §8);
- Lambda: none (its execution-role documentation names no source key).

Evaluated: Allow statements whose principal is the service and whose action is sts:AssumeRole, with
the condition operators the template uses (String*, Arn*, and their IfExists forms). A key the
service does not send fails its condition unless the operator ends in IfExists, as in IAM.
"""

from __future__ import annotations

import fnmatch
from typing import Any

ACCOUNT_KEY, SOURCE_ARN_KEY = "aws:SourceAccount", "aws:SourceArn"
# Which keys each service principal sends (docs/aws-facts.md §5.5).
SENT_KEYS: dict[str, frozenset[str]] = {
    "states.amazonaws.com": frozenset({ACCOUNT_KEY, SOURCE_ARN_KEY}),
    "scheduler.amazonaws.com": frozenset({ACCOUNT_KEY, SOURCE_ARN_KEY}),
    "sagemaker.amazonaws.com": frozenset({ACCOUNT_KEY}),
    "lambda.amazonaws.com": frozenset(),
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(operator: str, actual: str, expected: str) -> bool:
    if operator in ("StringEquals", "ArnEquals"):
        return actual == expected
    if operator in ("StringLike", "ArnLike"):
        return fnmatch.fnmatchcase(actual, expected)
    raise ValueError(f"trust condition operator {operator!r} is not evaluated by the local cloud")


def principal_services(statement: dict[str, Any]) -> set[str]:
    principal = statement.get("Principal", {})
    return set(as_list(principal.get("Service", []))) if isinstance(principal, dict) else set()


def refusal(trust: dict[str, Any], service: str, context: dict[str, str]) -> str | None:
    """None when `service`, sending the documented keys of `context`, may assume a role with this
    trust policy; otherwise why not (for the error message)."""
    sent = {key: value for key, value in context.items() if key in SENT_KEYS.get(service, frozenset())}
    reasons = []
    for statement in as_list(trust.get("Statement", [])):
        if statement.get("Effect") != "Allow" or service not in principal_services(statement):
            continue
        if "sts:AssumeRole" not in as_list(statement.get("Action", [])):
            continue
        failed = []
        for operator, conditions in statement.get("Condition", {}).items():
            base = operator.removesuffix("IfExists")
            for key, expected in conditions.items():
                if key not in sent:
                    if base == operator:
                        failed.append(f"{key} (not sent by {service})")
                    continue
                if not any(_matches(base, sent[key], str(value)) for value in as_list(expected)):
                    failed.append(f"{key}={sent[key]!r} is not {operator} {expected!r}")
        if not failed:
            return None
        reasons.extend(failed)
    return "; ".join(reasons) or f"no statement lets {service} assume the role"
