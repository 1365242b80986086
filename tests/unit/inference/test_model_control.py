"""Model control and leases: moto DynamoDB for the leases, a stateful fake Custom Labels service and
a fake Step Functions (which executions are still running) behind real clients (requests and
responses checked against the API models)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from fixtures_aws import MODEL_ARN, PROJECT_ARN, REGION, FakeCustomLabels, FakeExecutions, make_config
from labeling_loop.inference import model_control, model_lease
from labeling_loop.kernel.errors import (
    ModelNotFoundError,
    ModelStartFailedError,
    ModelStartTimeoutError,
    ModelTransitionError,
)
from labeling_loop.kernel.run_config import RunConfig

NOW = 1_760_000_000.0


@pytest.fixture
def model(aws: SimpleNamespace) -> FakeCustomLabels:
    return FakeCustomLabels().attach(boto3.client("rekognition", region_name=REGION))


@pytest.fixture
def executions(aws: SimpleNamespace) -> FakeExecutions:
    return FakeExecutions().attach(boto3.client("stepfunctions", region_name=REGION))


def run(name: str, **overrides: Any) -> RunConfig:
    return make_config(name, **overrides)


@pytest.fixture(autouse=True)
def _steps(aws: SimpleNamespace, executions: FakeExecutions) -> None:
    aws.executions = executions  # which lease holders are still running


def services(aws: SimpleNamespace, model: FakeCustomLabels) -> model_control.Services:
    return model_control.Services(model.client, aws.dynamodb, aws.table, aws.executions.client)


IMAGES = 300  # images the run infers


def acquire(
    aws: SimpleNamespace, model: FakeCustomLabels, config: RunConfig, now: float = NOW
) -> dict[str, Any]:
    return model_control.acquire(services(aws, model), config, now, IMAGES).to_dict()


def check(
    aws: SimpleNamespace,
    model: FakeCustomLabels,
    config: RunConfig,
    previous: dict[str, Any],
    now: float = NOW,
) -> dict[str, Any]:
    return model_control.check(services(aws, model), config, previous, now, IMAGES).to_dict()


def release(aws: SimpleNamespace, model: FakeCustomLabels, config: RunConfig) -> dict[str, Any]:
    result = model_control.release(services(aws, model), config)
    return {k: v for k, v in result.items() if k != "prunedUsers"}


def lease(aws: SimpleNamespace) -> model_lease.Lease:
    return model_lease.read(aws.dynamodb, aws.table, MODEL_ARN)


# Starting -----------------------------------------------------------------------------------------


def test_a_stopped_model_is_started_and_the_run_takes_the_stop_duty(
    aws: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN a stopped model
    config = run("run-a", minInferenceUnits=2, modelStartTimeoutMinutes=30)

    # WHEN a run acquires it
    state = acquire(aws, model, config)

    # THEN the model is started with the run's inference units, and the run says it started it
    assert model.operations("StartProjectVersion") == [
        {"ProjectVersionArn": MODEL_ARN, "MinInferenceUnits": 2}
    ]
    assert state["status"] == "STARTING"
    assert state["startedByRun"] is True
    assert state["projectArn"] == PROJECT_ARN
    assert state["deadline"] == int(NOW) + 30 * 60
    # AND the lease records the run as a user and the workflow as the starter
    assert lease(aws) == model_lease.Lease(frozenset({config.executionArn}), True, config.executionArn)


def test_check_reports_running_with_the_units_the_model_runs_on(
    aws: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN a run that started the model on 12 units (the stack allows up to 20)
    config = make_config("run-a", stack={"InferenceUnitsLimit": "20"}, minInferenceUnits=12)
    state = acquire(aws, model, config)
    # WHEN the model has finished starting
    model.status = "RUNNING"
    state = check(aws, model, config, state, NOW + 600)
    # THEN the fan-out is planned for those units: two batches (one per 10 units) splitting the
    # run's images, each starting from its share of the priors
    assert state["status"] == "RUNNING"
    assert state["startedByRun"] is True
    assert (state["inferenceUnits"], state["mapConcurrency"]) == (12, 2)
    assert state["batches"] == [
        {"batchId": 0, "first": 0, "count": 150, "callsPerSecond": 30.0, "callsInFlight": 15.0, "batches": 2},
        {
            "batchId": 1,
            "first": 150,
            "count": 150,
            "callsPerSecond": 30.0,
            "callsInFlight": 15.0,
            "batches": 2,
        },
    ]


def test_a_running_model_is_used_as_it_is_and_never_stopped_by_the_run(
    aws: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN a model someone started by hand, auto-scaling between 1 and 3 units
    model.status, model.min_units, model.max_units = "RUNNING", 1, 3
    config = run("run-a", minInferenceUnits=5)

    # WHEN a run acquires and later releases it
    state = acquire(aws, model, config)
    released = release(aws, model, config)

    # THEN it is neither started nor stopped, and the fan-out is sized for the units it runs on
    # now: CloudWatch has no figure here, so its floor (never its Max, which it may not reach)
    assert state["status"] == "RUNNING" and state["startedByRun"] is False
    assert (state["inferenceUnits"], state["mapConcurrency"]) == (1, 1)
    assert state["batches"][0]["callsPerSecond"] == 5.0
    assert released == {"stopped": False, "status": "LEFT_RUNNING_OR_STOPPED"}
    assert model.operations("StartProjectVersion") == [] and model.operations("StopProjectVersion") == []
    assert model.status == "RUNNING"


@pytest.mark.parametrize("startable", ["TRAINING_COMPLETED", "COPYING_COMPLETED"])
def test_a_freshly_trained_or_copied_model_is_started(
    aws: SimpleNamespace, model: FakeCustomLabels, startable: str
) -> None:
    # GIVEN a model that was trained or copied and never started
    # WHEN a run acquires it
    # THEN the run starts it
    model.status = startable
    assert acquire(aws, model, run("run-a"))["startedByRun"] is True
    assert len(model.operations("StartProjectVersion")) == 1


def test_a_start_lost_to_another_run_waits_for_the_model_and_keeps_the_workflows_duty(
    aws: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN another run started the model between this run's describe and its start
    model.start_errors.append("ResourceInUseException")
    # WHEN this run acquires it
    config = run("run-b")
    state = acquire(aws, model, config)
    # THEN it waits for the model without claiming to have started it
    assert state["status"] == "STARTING"
    assert state["startedByRun"] is False
    # AND the duty to stop it stays recorded (it was recorded before the start was attempted: the
    # winner was another run of the workflow, which records the same duty)
    assert lease(aws).started_by_workflow is True


# Overlapping runs ---------------------------------------------------------------------------------


def test_overlapping_runs_never_stop_the_model_under_each_other(
    aws: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN run A started the model and run B joined while it was starting
    a, b = run("run-a"), run("run-b")
    state_a = acquire(aws, model, a)
    state_b = acquire(aws, model, b, NOW + 5)
    assert (state_a["startedByRun"], state_b["startedByRun"]) == (True, False)
    assert len(model.operations("StartProjectVersion")) == 1
    model.status = "RUNNING"

    # WHEN A finishes its inference first
    released_a = release(aws, model, a)

    # THEN the model keeps running for B
    assert released_a["stopped"] is False
    assert model.status == "RUNNING"
    assert model.operations("StopProjectVersion") == []

    # WHEN B finishes
    released_b = release(aws, model, b)

    # THEN B, the last user, stops the model the workflow started
    assert released_b == {"stopped": True, "status": "STOPPING"}
    assert model.operations("StopProjectVersion") == [{"ProjectVersionArn": MODEL_ARN}]
    assert lease(aws) == model_lease.Lease(frozenset(), False, None)


def test_the_starter_finishing_last_stops_the_model(aws: SimpleNamespace, model: FakeCustomLabels) -> None:
    # GIVEN run A started the model and run B joined
    # WHEN B releases first, then A
    # THEN A, the last user, stops it, once
    a, b = run("run-a"), run("run-b")
    acquire(aws, model, a)
    acquire(aws, model, b)
    model.status = "RUNNING"
    assert release(aws, model, b)["stopped"] is False
    assert release(aws, model, a)["stopped"] is True
    assert len(model.operations("StopProjectVersion")) == 1


def test_releasing_twice_stops_once(aws: SimpleNamespace, model: FakeCustomLabels) -> None:
    # GIVEN a run that started and then released (stopped) the model
    config = run("run-a")
    acquire(aws, model, config)
    model.status = "RUNNING"
    assert release(aws, model, config)["stopped"] is True
    # WHEN the release is retried (or the failure path releases again)
    again = release(aws, model, config)
    # THEN nothing more happens
    assert again["stopped"] is False
    assert len(model.operations("StopProjectVersion")) == 1


def test_a_stopping_model_is_restarted_once_it_has_stopped(
    aws: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN a model another run is stopping as this run acquires it
    model.status = "STOPPING"
    config = run("run-b")
    state = acquire(aws, model, config)
    assert state["status"] == "STOPPING" and state["startedByRun"] is False
    assert model.operations("StartProjectVersion") == []

    # WHEN a check still sees it stopping
    state = check(aws, model, config, state, NOW + 60)
    # THEN the run keeps waiting
    assert state["status"] == "STOPPING"

    # WHEN it has stopped
    model.status = "STOPPED"
    state = check(aws, model, config, state, NOW + 120)

    # THEN this run starts it again and takes the stop duty
    assert state["status"] == "STARTING" and state["startedByRun"] is True
    assert len(model.operations("StartProjectVersion")) == 1
    assert lease(aws).started_by == config.executionArn
    model.status = "RUNNING"
    assert release(aws, model, config)["stopped"] is True


# Failures -----------------------------------------------------------------------------------------


def test_a_model_that_fails_to_start_fails_the_run(aws: SimpleNamespace, model: FakeCustomLabels) -> None:
    config = run("run-a")
    state = acquire(aws, model, config)
    # WHEN the model goes to FAILED while starting
    model.status = "FAILED"
    # THEN the check says so, with the status message
    with pytest.raises(ModelStartFailedError, match="went to FAILED: The model is failed"):
        check(aws, model, config, state, NOW + 60)


@pytest.mark.parametrize("status", ["TRAINING_FAILED", "DEPRECATED", "EXPIRED", "DELETING"])
def test_a_broken_model_is_not_started(aws: SimpleNamespace, model: FakeCustomLabels, status: str) -> None:
    # GIVEN a model in a state it can never run from
    # WHEN a run acquires it
    # THEN the run fails at once, naming the status, and starts nothing
    model.status = status
    with pytest.raises(ModelStartFailedError, match=status):
        acquire(aws, model, run("run-a"))
    assert model.operations("StartProjectVersion") == []


def test_a_model_still_starting_after_the_deadline_times_out(
    aws: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN a run that allows 10 minutes for the model to start
    config = run("run-a", modelStartTimeoutMinutes=10)
    state = acquire(aws, model, config)
    # WHEN it is still starting just before the deadline, nothing happens
    assert check(aws, model, config, state, NOW + 600)["status"] == "STARTING"
    # WHEN it is still starting after the deadline
    # THEN the run gives up, pointing at the setting
    with pytest.raises(ModelStartTimeoutError, match="modelStartTimeoutMinutes"):
        check(aws, model, config, state, NOW + 601)


def test_a_model_running_after_the_deadline_is_fine(aws: SimpleNamespace, model: FakeCustomLabels) -> None:
    # GIVEN a model that reached RUNNING
    # WHEN the check runs after the start deadline
    # THEN the run goes on
    config = run("run-a", modelStartTimeoutMinutes=10)
    state = acquire(aws, model, config)
    model.status = "RUNNING"
    assert check(aws, model, config, state, NOW + 3600)["status"] == "RUNNING"


def test_a_model_that_cannot_be_stopped_yet_keeps_the_stop_duty(
    aws: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN a run that started the model, which is still STARTING when the run fails
    config = run("run-a")
    acquire(aws, model, config)

    # WHEN the run releases it (StopProjectVersion refuses with ResourceInUseException)
    with pytest.raises(ModelTransitionError, match="cannot be stopped yet"):
        release(aws, model, config)

    # THEN the duty to stop it is kept
    assert lease(aws).started_by_workflow is True
    # AND once the model is running, the retried release stops it
    model.status = "RUNNING"
    assert release(aws, model, config) == {"stopped": True, "status": "STOPPING"}
    assert model.status == "STOPPING"


def test_other_stop_errors_also_keep_the_stop_duty(aws: SimpleNamespace, model: FakeCustomLabels) -> None:
    # GIVEN a stop that fails with another error (throttled)
    # WHEN the run releases the model
    # THEN the error surfaces, the stop duty is kept and a retry stops it
    config = run("run-a")
    acquire(aws, model, config)
    model.status = "RUNNING"
    model.stop_errors.append("ThrottlingException")
    with pytest.raises(Exception, match="ThrottlingException"):
        release(aws, model, config)
    assert lease(aws).started_by_workflow is True
    assert release(aws, model, config)["stopped"] is True


def test_a_model_deleted_before_the_stop_is_not_an_error(
    aws: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN the model version was deleted while the run used it
    # WHEN the run releases it
    # THEN the release succeeds, saying the model is gone
    config = run("run-a")
    acquire(aws, model, config)
    model.status = "RUNNING"
    model.stop_errors.append("ResourceNotFoundException")  # deleted between the describe and the stop
    assert release(aws, model, config) == {"stopped": False, "status": "NOT_FOUND"}
    assert lease(aws).started_by_workflow is False


def test_a_model_whose_project_is_gone_is_not_an_error(aws: SimpleNamespace, model: FakeCustomLabels) -> None:
    # GIVEN the model's project was deleted while the run used it
    config = run("run-a")
    acquire(aws, model, config)
    model.project_name = "deleted"
    # WHEN the run releases it
    # THEN the release succeeds, saying the model is gone, and no stop is attempted
    assert release(aws, model, config) == {"stopped": False, "status": "NOT_FOUND"}
    assert model.operations("StopProjectVersion") == []


def test_an_unknown_project_fails_and_releases_the_lease(
    aws: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN the model's project does not exist (deleted, or a typo in the ARN)
    model.project_name = "other-project"
    # WHEN a run acquires it
    with pytest.raises(ModelNotFoundError, match="no Custom Labels project named 'birds'"):
        acquire(aws, model, run("run-a"))
    # THEN no lease is left behind
    assert lease(aws).users == frozenset()


def test_an_unknown_version_fails_and_releases_the_lease(
    aws: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN a version ARN the project does not have
    # WHEN a run acquires it
    # THEN it fails with ModelNotFoundError and leaves no lease
    config = run("run-a", projectVersionArn=MODEL_ARN.replace("birds.2024-05-01", "birds.2023-01-01"))
    with pytest.raises(ModelNotFoundError, match="no model version"):
        acquire(aws, model, config)
    assert model_lease.read(aws.dynamodb, aws.table, config.projectVersionArn).users == frozenset()


# Runs that end outside their Catch, and crashes between two calls ---------------------------------


def test_a_dead_lease_holder_never_keeps_a_model_running(
    aws: SimpleNamespace, model: FakeCustomLabels, executions: FakeExecutions
) -> None:
    # GIVEN run A started the model, run B joined, and A was aborted without releasing (no Catch ran)
    a, b = run("run-a"), run("run-b")
    acquire(aws, model, a)
    acquire(aws, model, b)
    model.status = "RUNNING"
    executions.end(a.executionArn, "ABORTED")

    # WHEN B finishes its inference
    released = model_control.release(services(aws, model), b)

    # THEN B finds A dead, prunes it, and stops the model as the last live user
    assert released == {"stopped": True, "status": "STOPPING", "prunedUsers": 1}
    assert lease(aws) == model_lease.Lease(frozenset(), False, None)


def test_a_live_lease_holder_is_never_pruned(
    aws: SimpleNamespace, model: FakeCustomLabels, executions: FakeExecutions
) -> None:
    # GIVEN two runs on the model, the other one still running (or its status unknown)
    a, b = run("run-a"), run("run-b")
    acquire(aws, model, a)
    acquire(aws, model, b)
    model.status = "RUNNING"
    # WHEN A releases
    released = model_control.release(services(aws, model), a)
    # THEN B keeps its lease and its model
    assert released["stopped"] is False and released["prunedUsers"] == 0
    assert lease(aws).users == frozenset({b.executionArn})
    assert model.status == "RUNNING"


def test_a_crash_between_recording_the_start_and_starting_keeps_the_duty_until_no_start_can_come(
    aws: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN the duty was recorded and the function died before StartProjectVersion
    config = run("run-a")
    model_lease.acquire(aws.dynamodb, aws.table, MODEL_ARN, config.executionArn)
    model_lease.record_start(aws.dynamodb, aws.table, MODEL_ARN, config.executionArn, now=int(NOW))
    assert model.status == "STOPPED"
    # WHEN the run's cleanup releases the model while a start call may still be on its way
    # THEN it waits (the Task retries): a model found stopped is not proof that no start comes
    with pytest.raises(ModelTransitionError, match="STOPPED and cannot be stopped yet"):
        model_control.release(services(aws, model), config, now=NOW + 60)
    assert lease(aws).started_by_workflow is True
    assert model.operations("StopProjectVersion") == []
    # AND once no invocation that could make the call is alive, the duty is cleared
    later = NOW + model_lease.START_CALL_WINDOW_S + 1
    released = model_control.release(services(aws, model), config, now=later)
    assert released == {"stopped": False, "status": "STOPPED", "prunedUsers": 0}
    assert lease(aws) == model_lease.Lease(frozenset(), False, None)


def test_a_stop_during_the_start_call_leaves_the_duty_for_the_sweep(
    aws: SimpleNamespace, model: FakeCustomLabels, executions: FakeExecutions
) -> None:
    # GIVEN a run recorded its stop duty and its StartProjectVersion call is on its way ...
    config = run("run-a")
    model_lease.acquire(aws.dynamodb, aws.table, MODEL_ARN, config.executionArn)
    model_lease.record_start(aws.dynamodb, aws.table, MODEL_ARN, config.executionArn, now=int(NOW))
    # ... when a person stops the execution: the ended-event cleanup finds the model still STOPPED
    executions.end(config.executionArn, "ABORTED")
    cleanup = model_control.release(services(aws, model), config, now=NOW + 1, wait=False)
    # THEN it does not clear the duty (the start may still come), and stops nothing
    assert (cleanup["stopped"], cleanup["status"], cleanup["stopPending"]) == (False, "STOPPED", True)
    assert lease(aws).started_by_workflow is True
    # WHEN the call then reaches Rekognition (the model starts with no holder) and returns
    model.respond("StartProjectVersion", {"ProjectVersionArn": MODEL_ARN, "MinInferenceUnits": 1})
    model_lease.start_returned(aws.dynamodb, aws.table, MODEL_ARN, config.executionArn)
    sweep = model_control.ModelRef.of(MODEL_ARN)
    # THEN the sweep cannot stop it while it starts, keeps the duty, and stops it once it runs
    first = model_control.stop_if_unused(services(aws, model), sweep, who=model_lease.SWEEP, now=NOW + 60)
    assert (first["stopped"], first["status"], first["stopPending"]) == (False, "STARTING", True)
    model.status = "RUNNING"
    second = model_control.stop_if_unused(services(aws, model), sweep, who=model_lease.SWEEP, now=NOW + 960)
    assert second == {"stopped": True, "status": "STOPPING", "prunedUsers": 0}
    assert lease(aws) == model_lease.Lease(frozenset(), False, None)


def test_a_crash_between_starting_and_the_next_step_keeps_the_duty(
    aws: SimpleNamespace, model: FakeCustomLabels, executions: FakeExecutions
) -> None:
    # GIVEN a run that started the model and died right after (the duty was recorded first)
    config = run("run-a")
    acquire(aws, model, config)
    model.status = "RUNNING"
    executions.end(config.executionArn, "TIMED_OUT")
    # WHEN the sweep (or the execution-ended cleanup) looks at the model
    result = model_control.stop_if_unused(
        services(aws, model), model_control.ModelRef.of(MODEL_ARN), who="sweep"
    )
    # THEN the dead holder is pruned and the model the workflow started is stopped
    assert result == {"stopped": True, "status": "STOPPING", "prunedUsers": 1}


def test_a_crash_between_deciding_the_stop_and_stopping_is_finished_by_the_next_caller(
    aws: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN a run that decided to stop the model and died before StopProjectVersion
    config = run("run-a")
    acquire(aws, model, config)
    model.status = "RUNNING"
    model_lease.leave(aws.dynamodb, aws.table, MODEL_ARN, config.executionArn)
    assert model_lease.decide_stop(aws.dynamodb, aws.table, MODEL_ARN, config.executionArn)
    assert model.status == "RUNNING"
    # WHEN the failure path retries the release
    released = release(aws, model, config)
    # THEN the decision is carried out and cleared
    assert released == {"stopped": True, "status": "STOPPING"}
    assert lease(aws) == model_lease.Lease(frozenset(), False, None)


def test_a_run_arriving_during_a_decided_stop_finishes_it_and_starts_the_model_again(
    aws: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN run A decided to stop the model (no user left) but has not called StopProjectVersion
    a, b = run("run-a"), run("run-b")
    acquire(aws, model, a)
    model.status = "RUNNING"
    model_lease.leave(aws.dynamodb, aws.table, MODEL_ARN, a.executionArn)
    assert model_lease.decide_stop(aws.dynamodb, aws.table, MODEL_ARN, a.executionArn)
    # WHEN run B acquires the model in that moment
    state = acquire(aws, model, b)
    # THEN B does not use a model about to stop: it finishes the stop, then waits to start it again
    assert model.operations("StopProjectVersion") == [{"ProjectVersionArn": MODEL_ARN}]
    assert state["status"] == "STOPPING" and state["startedByRun"] is False
    model.status = "STOPPED"
    state = check(aws, model, b, state, NOW + 60)
    assert state["status"] == "STARTING" and state["startedByRun"] is True
    assert lease(aws) == model_lease.Lease(frozenset({b.executionArn}), True, b.executionArn)
    # AND A's own stop, when it comes, finds nothing of its decision left and stops nothing
    assert model_lease.stop_done(aws.dynamodb, aws.table, MODEL_ARN, a.executionArn) is False


def test_a_stale_stop_decision_is_taken_over(aws: SimpleNamespace, model: FakeCustomLabels) -> None:
    # GIVEN a decision to stop from a caller that died long ago
    config = run("run-a")
    acquire(aws, model, config)
    model_lease.leave(aws.dynamodb, aws.table, MODEL_ARN, config.executionArn)
    old = int(NOW) - model_lease.STALE_STOP_SECONDS - 1
    assert model_lease.decide_stop(aws.dynamodb, aws.table, MODEL_ARN, "someone", now=old)
    # THEN another caller may not decide while it is recent, but may once it is stale
    assert not model_lease.decide_stop(aws.dynamodb, aws.table, MODEL_ARN, "sweep", now=old + 60)
    assert model_lease.decide_stop(aws.dynamodb, aws.table, MODEL_ARN, "sweep", now=int(NOW))


# Leases directly ----------------------------------------------------------------------------------


def test_acquiring_a_lease_is_idempotent(aws: SimpleNamespace) -> None:
    # WHEN the same execution acquires twice (a retried state)
    model_lease.acquire(aws.dynamodb, aws.table, MODEL_ARN, "exec-a")
    again = model_lease.acquire(aws.dynamodb, aws.table, MODEL_ARN, "exec-a")
    # THEN it holds one lease, and one leave frees the model for a stop decision
    assert again.users == frozenset({"exec-a"})
    model_lease.record_start(aws.dynamodb, aws.table, MODEL_ARN, "exec-a")
    assert model_lease.leave(aws.dynamodb, aws.table, MODEL_ARN, "exec-a").users == frozenset()
    assert model_lease.decide_stop(aws.dynamodb, aws.table, MODEL_ARN, "exec-a") is True
    # AND the index lists the model for the sweep
    assert model_lease.leased_models(aws.dynamodb, aws.table) == [MODEL_ARN]


def test_releasing_a_lease_never_held_stops_nothing(aws: SimpleNamespace) -> None:
    # GIVEN a run that failed before acquiring the model
    # WHEN the failure path leaves it
    model_lease.leave(aws.dynamodb, aws.table, MODEL_ARN, "exec-z")
    # THEN it has no stop to decide
    assert model_lease.decide_stop(aws.dynamodb, aws.table, MODEL_ARN, "exec-z") is False


def test_a_run_arriving_while_a_decided_stop_waits_for_a_starting_model_uses_the_model(
    aws: SimpleNamespace, model: FakeCustomLabels, executions: FakeExecutions
) -> None:
    # GIVEN the sweep decided to stop a model nobody held, which is still STARTING (it cannot be
    # stopped yet: AWS stops running models), so the decision waits
    a, b = run("run-a"), run("run-b")
    acquire(aws, model, a)
    executions.end(a.executionArn, "ABORTED")
    sweep = model_control.stop_if_unused(
        services(aws, model), model_control.ModelRef.of(MODEL_ARN), who=model_lease.SWEEP
    )
    assert (sweep["stopped"], sweep["status"], sweep["stopPending"]) == (False, "STARTING", True)
    # WHEN another run acquires it
    state = acquire(aws, model, b)
    # THEN it uses the starting model (no stop, no second start), and the decision is dropped, so
    # nobody stops the model under it; the workflow's duty stays for the last user
    assert (state["status"], state["startedByRun"]) == ("STARTING", False)
    assert model.operations("StopProjectVersion") == [] and len(model.operations("StartProjectVersion")) == 1
    held = lease(aws)
    assert (held.users, held.stopping, held.started_by_workflow) == (frozenset({b.executionArn}), None, True)
    model.status = "RUNNING"
    assert (
        model_control.stop_if_unused(
            services(aws, model), model_control.ModelRef.of(MODEL_ARN), who=model_lease.SWEEP
        )["stopped"]
        is False
    )
    assert release(aws, model, b) == {"stopped": True, "status": "STOPPING"}
