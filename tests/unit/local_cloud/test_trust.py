"""Trust policies evaluated as IAM would, with the condition keys each service documents sending
(localcloud/engine/trust.py, docs/aws-facts.md §5.5), and the deployment that relies on them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.engine.cloud import LocalCloud, LocalCloudConfig
from localcloud.engine.deployment import DeploymentError
from localcloud.engine.trust import refusal
from localcloud.paths import REPO_ROOT

ACCOUNT = "123456789012"
JOB_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:labeling-job/*"


def trust(service: str, condition: dict[str, Any]) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return {"Version": "2012-10-17", "Statement": [{**statement, "Condition": condition}]}


def test_a_condition_on_a_key_the_service_sends_is_evaluated() -> None:
    machine = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:loop"
    policy = trust(
        "states.amazonaws.com",
        {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": machine}},
    )
    context = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": machine}
    assert refusal(policy, "states.amazonaws.com", context) is None
    other = {**context, "aws:SourceAccount": "999999999999"}
    assert "aws:SourceAccount='999999999999'" in str(refusal(policy, "states.amazonaws.com", other))


def test_a_condition_on_a_key_the_service_does_not_send_refuses_it() -> None:
    # GIVEN Ground Truth's role held to a labeling job's aws:SourceArn, which no AWS source documents
    policy = trust(
        "sagemaker.amazonaws.com",
        {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": JOB_ARN}},
    )
    # THEN SageMaker, sending the keys documented for it, cannot assume it
    context = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": JOB_ARN.replace("*", "job-1")}
    assert "aws:SourceArn (not sent by sagemaker.amazonaws.com)" in str(
        refusal(policy, "sagemaker.amazonaws.com", context)
    )
    # AND held to the account only, or with IfExists, it can
    account_only = trust("sagemaker.amazonaws.com", {"StringEquals": {"aws:SourceAccount": ACCOUNT}})
    assert refusal(account_only, "sagemaker.amazonaws.com", context) is None
    if_exists = trust(
        "sagemaker.amazonaws.com",
        {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLikeIfExists": {"aws:SourceArn": JOB_ARN}},
    )
    assert refusal(if_exists, "sagemaker.amazonaws.com", context) is None


def test_a_role_of_another_service_is_not_assumable() -> None:
    policy = trust("lambda.amazonaws.com", {})
    assert refusal(policy, "sagemaker.amazonaws.com", {"aws:SourceAccount": ACCOUNT}) is not None


def _template_with(tmp_path: Path, old: str, new: str) -> Path:
    text = (REPO_ROOT / "template.yaml").read_text()
    assert old in text
    path = tmp_path / "template.yaml"
    path.write_text(text.replace(old, new))
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    yield


GROUND_TRUTH_TRUST = """            Condition:
              StringEquals:
                aws:SourceAccount: !Ref AWS::AccountId
      Policies:
        - PolicyName: GroundTruthJobAccess"""


def test_ground_truth_gets_no_role_whose_trust_it_cannot_meet(env: None, tmp_path: Path) -> None:
    # GIVEN the template's Ground Truth role as it stands, and one held to the labeling job's SourceArn
    with LocalCloud(LocalCloudConfig()) as cloud:
        stack = cloud.deploy()
        assert stack.ground_truth_role_arn in (cloud.groundtruth.config.known_roles or ())
    held = GROUND_TRUTH_TRUST.replace(
        "AWS::AccountId\n",
        "AWS::AccountId\n              ArnLike:\n                aws:SourceArn: !Sub "
        '"arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:labeling-job/*"\n',
    )
    template = _template_with(tmp_path, GROUND_TRUTH_TRUST, held)
    with LocalCloud(LocalCloudConfig(template=template)) as cloud:
        stack = cloud.deploy()
        # THEN Ground Truth cannot assume the second: every labeling job naming it is refused
        assert stack.ground_truth_role_arn not in (cloud.groundtruth.config.known_roles or ())


def test_a_state_machine_role_step_functions_cannot_assume_stops_the_deployment(
    env: None, tmp_path: Path
) -> None:
    machine = (
        'aws:SourceArn: !Sub "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}'
        ':stateMachine:${AWS::StackName}-labeling-loop"'
    )
    template = _template_with(tmp_path, machine, machine.replace("-labeling-loop", "-another-machine"))
    with LocalCloud(LocalCloudConfig(template=template)) as cloud:
        with pytest.raises(
            DeploymentError, match=r"states\.amazonaws\.com could not assume it: aws:SourceArn"
        ):
            cloud.deploy()
