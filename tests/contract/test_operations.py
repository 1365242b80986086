"""Operations in template.yaml: the alarms (runs failed or timed out, cleanup failed, a
workflow-started model with no live run, reviews past their deadline) notify the stack's topic; the
dashboard and the alarms read only metrics that exist (AWS namespaces, or a metric a function of
this repository emits); every resource that takes tags carries the CostCenter tag, and so do the
labeling jobs the runs create."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

OWN_NAMESPACE = "LabelingLoop"
AWS_NAMESPACES = {"AWS/States", "AWS/Lambda", "AWS/Rekognition"}
# CloudFormation types of the translated template that take tags, and how (list of Key/Value, or map).
TAGGABLE = {
    "AWS::S3::Bucket": "list",
    "AWS::DynamoDB::Table": "list",
    "AWS::Logs::LogGroup": "list",
    "AWS::IAM::Role": "list",
    "AWS::Lambda::Function": "list",
    "AWS::StepFunctions::StateMachine": "list",
    "AWS::SNS::Topic": "list",
    "AWS::CloudWatch::Alarm": "list",
}
# Types CloudFormation gives no Tags property (dashboards, policies, the roles' managed policies,
# permissions, layers, schedules, subscriptions), and the execution-ended rule SAM generates from a
# function's EventBridgeRule event (SAM passes no tags to it, PropagateTags included):
# `sam deploy --tags CostCenter=...` covers those.
UNTAGGABLE = {
    "AWS::Events::Rule",
    "AWS::CloudWatch::Dashboard",
    "AWS::S3::BucketPolicy",
    "AWS::IAM::ManagedPolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SNS::Subscription",
    "AWS::Lambda::Permission",
    "AWS::Lambda::LayerVersion",
    "AWS::Scheduler::Schedule",
}


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def emitted_metrics(repo_root: Path) -> set[str]:
    """Metric names the functions add (`metrics.add_metric(name="...")`)."""
    names = set()
    for app in (repo_root / "functions").glob("*/app.py"):
        for node in ast.walk(ast.parse(app.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_metric":
                for keyword in node.keywords:
                    if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                        names.add(str(keyword.value.value))
    return names


def _alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, str]]:
    props = alarm["Properties"]
    if "MetricName" in props:
        return [(props["Namespace"], props["MetricName"])]
    return [
        (m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"])
        for m in props["Metrics"]
        if "MetricStat" in m
    ]


@pytest.fixture(scope="module")
def alarms(sam_template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return _resources(sam_template, "AWS::CloudWatch::Alarm")


def test_the_five_alarms_exist(alarms: dict[str, dict[str, Any]]) -> None:
    watched = {metric for alarm in alarms.values() for _, metric in _alarm_metrics(alarm)}
    assert {"ExecutionsFailed", "ExecutionsTimedOut"} <= watched, "runs failed or timed out"
    assert "Errors" in watched, "cleanup functions failing"
    assert "ModelsStoppedBySweep" in watched, "a workflow-started model with no live execution"
    assert "ModelsLeftRunningUnheld" in watched, "one the sweep could not stop, two sweeps in a row"
    assert "ReviewsPastDeadline" in watched, "review backlog past its deadline"


def test_every_alarm_notifies_the_topic_and_is_quiet_without_data(alarms: dict[str, dict[str, Any]]) -> None:
    for logical_id, alarm in alarms.items():
        props = alarm["Properties"]
        assert props.get("AlarmActions") == [{"Ref": "AlarmTopic"}], logical_id
        assert props.get("TreatMissingData") == "notBreaching", logical_id
        assert str(props.get("AlarmDescription", "")).strip(), f"{logical_id}: say what to do"


def test_cleanup_alarm_covers_every_cleanup_function(alarms: dict[str, dict[str, Any]]) -> None:
    functions = {
        m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
        for m in alarms["CleanupFailedAlarm"]["Properties"]["Metrics"]
        if "MetricStat" in m
    }
    assert functions == {"RunCleanupFunction", "CleanUpEndedRunFunction", "SweepModelsFunction"}


def test_alarms_read_metrics_that_exist(alarms: dict[str, dict[str, Any]], repo_root: Path) -> None:
    emitted = emitted_metrics(repo_root)
    for logical_id, alarm in alarms.items():
        for namespace, metric in _alarm_metrics(alarm):
            assert namespace in AWS_NAMESPACES | {OWN_NAMESPACE}, (logical_id, namespace)
            if namespace == OWN_NAMESPACE:
                assert metric in emitted, f"{logical_id} watches {metric}, which no function emits"


def _dashboard(sam_template: dict[str, Any]) -> dict[str, Any]:
    (dashboard,) = _resources(sam_template, "AWS::CloudWatch::Dashboard").values()
    body, variables = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    text = re.sub(r"\$\{[A-Za-z:]+\}", "X", body)
    assert set(re.findall(r"\$\{(\w+)\}", body)) <= set(variables), "undefined ${...} in the dashboard"
    return dict(json.loads(text))


def test_dashboard_shows_runs_images_model_time_review_time_and_f1(
    sam_template: dict[str, Any], repo_root: Path
) -> None:
    widgets = _dashboard(sam_template)["widgets"]
    titles = " | ".join(w["properties"]["title"] for w in widgets)
    for expected in ("Runs", "Images per run", "inference units", "Review time", "F1", "Alarms"):
        assert expected in titles, titles
    emitted = emitted_metrics(repo_root)
    own = set()
    for widget in widgets:
        previous: list[Any] = []
        for row in widget["properties"].get("metrics", []):
            names = [x for x in row if isinstance(x, str)]
            if names and names[0] == OWN_NAMESPACE:
                own.add(names[1])
            elif names and names[0] == "." and previous and previous[0] == OWN_NAMESPACE:
                own.add(names[1])
            if names and names[0] != ".":
                previous = names
    assert own, "the dashboard shows none of the functions' metrics"
    assert own <= emitted, f"dashboard metrics no function emits: {sorted(own - emitted)}"


def test_every_taggable_resource_carries_the_cost_tag(translated_template: dict[str, Any]) -> None:
    untagged, unknown = [], []
    for logical_id, resource in translated_template["Resources"].items():
        kind = resource["Type"]
        if kind in UNTAGGABLE:
            continue
        if kind not in TAGGABLE:
            unknown.append(f"{logical_id} ({kind})")
            continue
        tags = resource.get("Properties", {}).get("Tags", [])
        keys = {t["Key"] for t in tags} if isinstance(tags, list) else set(tags)
        if "CostCenter" not in keys:
            untagged.append(f"{logical_id} ({kind})")
    assert not unknown, f"resource types this test does not know (taggable or not?): {unknown}"
    assert not untagged, f"resources without the CostCenter tag: {untagged}"


def test_labeling_jobs_carry_the_cost_tag(definition: dict[str, Any], state_machine: dict[str, Any]) -> None:
    create = definition["States"]["Run Labeling Jobs"]["ItemProcessor"]["States"]["Create Labeling Job"]
    assert {"Key": "CostCenter", "Value": "${CostCenter}"} in create["Parameters"]["Tags"]
    assert state_machine["DefinitionSubstitutions"]["CostCenter"] == {"Ref": "CostCenter"}
