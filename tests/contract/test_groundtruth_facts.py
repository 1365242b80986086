"""The Ground Truth facts the loop and the local cloud's emulator share (review/groundtruth/aws_facts.py)
are the ones docs/aws-facts.md records from AWS's documentation: one copy in code, checked against
the document it cites, so that a wrong value fails here and not only on AWS (the emulator, reading
the same copy, cannot tell)."""

from __future__ import annotations

import re
from pathlib import Path

from labeling_loop.review.groundtruth.aws_facts import (
    AWS_TASK_LAMBDA_ACCOUNTS,
    BUILTIN_TASK_TYPES,
    MAX_DETECTION_LABELS,
)
from markdown_tables import table_rows


def _section(repo_root: Path, heading: str) -> str:
    text = (repo_root / "docs" / "aws-facts.md").read_text()
    start = text.index(f"\n### {heading} ")
    end = text.find("\n### ", start + 1)
    return text[start : end if end > 0 else None]


def test_the_builtin_lambda_accounts_are_those_of_section_3_3(repo_root: Path) -> None:
    rows = table_rows(_section(repo_root, "3.3"), "| Region | Account | Region | Account |", "§3.3")
    documented = {row[i]: row[i + 1] for row in rows for i in (0, 2)}
    assert AWS_TASK_LAMBDA_ACCOUNTS == documented


def test_the_builtin_task_types_are_those_of_section_3_3(repo_root: Path) -> None:
    rows = table_rows(_section(repo_root, "3.3"), "| Task | `<Type>` |", "§3.3")
    assert {row[1].strip("`") for row in rows} == BUILTIN_TASK_TYPES


def test_the_bounding_box_label_quota_is_that_of_section_3_1(repo_root: Path) -> None:
    quotas = re.search(r"Label quotas \(API\): bounding box (\d+)", _section(repo_root, "3.1"))
    assert quotas is not None and int(quotas[1]) == MAX_DETECTION_LABELS
