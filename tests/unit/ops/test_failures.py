"""A failed run is told in one line: the error, the cause's message (never a Lambda's stack trace or
a service's raw answer) and what to do. The causes are the shapes Step Functions records: a Lambda's
error document, the cleanup's `States.X: <cause>`, a service's text."""

from __future__ import annotations

import json

from labeling_ops import failures

# What the first state's failure looks like in the execution (recorded in the local cloud).
LAMBDA_CAUSE = json.dumps(
    {
        "errorType": "InvalidInput",
        "errorMessage": "labels: the input names none and the datasets of project 'shapes' have none, "
        'so reviewers would have nothing to choose from; name them (e.g. "labels": ["cat", "dog"])',
        "stackTrace": [
            '  File "/var/task/aws_lambda_powertools/logging/logger.py", line 554, in decorate\n'
            "    return lambda_handler(event, context, *args, **kwargs)\n",
            '  File "/opt/python/labeling_loop/review/label_set.py", line 55, in with_project_labels\n'
            "    raise InvalidInput(\n",
        ],
    }
)


def test_a_lambda_error_document_gives_its_message_and_the_fix_not_its_stack_trace() -> None:
    line = failures.one_line("InvalidInput", LAMBDA_CAUSE)
    assert line.startswith("InvalidInput: labels: the input names none")
    assert "stackTrace" not in line and "File " not in line and "\n" not in line
    assert line.endswith("(what to do: " + failures.FIXES["InvalidInput"] + ")")


def test_the_cleanups_states_prefix_is_kept_with_the_message_inside() -> None:
    cause = "States.TaskFailed: " + json.dumps(
        {"errorType": "RuntimeError", "errorMessage": "boom", "stackTrace": ["x"]}
    )
    assert failures.cause_text(cause) == "States.TaskFailed: RuntimeError: boom"


def test_a_service_message_and_a_traceback_are_cut_to_one_line() -> None:
    assert failures.cause_text("first line\nsecond line") == "first line"
    traceback = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: the reason'
    assert failures.cause_text(traceback) == "ValueError: the reason"
    long = failures.cause_text("x" * 5000)
    assert len(long) == failures.MAX_CAUSE_CHARS and long.endswith("...")


def test_an_error_without_a_known_fix_or_cause_is_still_one_line() -> None:
    assert failures.one_line("SomethingNew", None) == "SomethingNew"
    assert failures.one_line(None, "why") == "Failed: why"
    assert failures.one_line("SomethingNew", "why") == "SomethingNew: why"
