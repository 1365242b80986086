"""The inference flow control (inference/flow.py, flow_hooks.py), driven by a fake clock: how a batch's
rate starts, falls on throttles, recovers, and how every attempt botocore makes goes through it."""

from __future__ import annotations

import itertools
import math
import threading
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from fixtures_aws import REGION
from labeling_loop.inference import flow_hooks
from labeling_loop.inference.flow import (
    BETA,
    MAX_IN_FLIGHT,
    PROBE_PER_CALL,
    SEED_ANSWERS,
    TARGET,
    Limiter,
    RateEstimate,
)
from moto.core.botocore_stubber import MockRawResponse

PRIOR_RATE = 5.0  # 1 inference unit at 5 TPS
PRIOR_IN_FLIGHT = 2.5  # 1 inference unit, 2.5 calls in flight


def answer_calls(
    estimate: RateEstimate, start: float, count: int, latency: float, busy: bool = True
) -> float:
    """`count` answered calls, sent one after the other at the estimate's rate; returns the time."""
    now = start
    for _ in range(count):
        estimate.sent(now)
        estimate.answered(now + latency, now, busy)
        now += 1.0 / estimate.rate
    return now


# Where the rate starts ------------------------------------------------------------------------------


def test_the_rate_starts_at_the_rate_prior_and_the_window_at_the_calls_in_flight_prior() -> None:
    estimate = RateEstimate(PRIOR_RATE, PRIOR_IN_FLIGHT)
    assert estimate.rate == PRIOR_RATE
    assert estimate.window() == 3  # 2.5 calls in flight, rounded up


@pytest.mark.parametrize(
    ("latency", "expected"),
    [
        (0.5, 5.0),  # 2.5 in flight / 0.5 s = 5/s: both priors agree
        (0.2, 12.5),  # a model that answers fast per call: the in-flight prior wins
        (2.0, 5.0),  # slow calls: never below the rate prior
    ],
)
def test_the_first_answers_set_the_rate_from_the_calls_in_flight_prior(
    latency: float, expected: float
) -> None:
    # GIVEN a fresh batch WHEN its first answers come back after `latency`
    estimate = RateEstimate(PRIOR_RATE, PRIOR_IN_FLIGHT)
    answer_calls(estimate, 0.0, SEED_ANSWERS, latency)
    # THEN the rate is the larger of the two priors at that latency
    assert estimate.rate == pytest.approx(expected)
    assert estimate.latency == pytest.approx(latency)


# Throttles ---------------------------------------------------------------------------------------


def test_a_throttle_before_anything_was_measured_falls_back_to_the_rate_prior() -> None:
    # GIVEN a batch that started at 12.5/s from the in-flight prior (fast calls)
    estimate = RateEstimate(PRIOR_RATE, PRIOR_IN_FLIGHT)
    now = answer_calls(estimate, 0.0, SEED_ANSWERS, 0.2)
    assert estimate.rate == pytest.approx(12.5)
    # WHEN the model refuses a call right away (too few answers to measure what it serves)
    estimate.throttled(now + 0.01, now)
    # THEN the rate falls back to the rate prior, and the refused rate is remembered as the limit
    assert estimate.rate == PRIOR_RATE
    assert estimate.limit == pytest.approx(12.5)


def test_a_throttle_far_above_what_the_model_serves_cuts_straight_to_the_goodput() -> None:
    # GIVEN a batch sending at 20/s of which 5 calls/s were answered for the last two seconds
    estimate = RateEstimate(PRIOR_RATE, PRIOR_IN_FLIGHT, rate=20.0, latency=0.1, answers=100, limit=25.0)
    for i in range(16):
        sent = i * 0.2
        estimate.sent(sent)
        estimate.answered(sent + 0.1, sent, busy=True)
    estimate.rate = 20.0
    # WHEN a call is refused
    estimate.throttled(3.3, 3.29)
    # THEN the rate drops to what was answered (5/s), not just by BETA, and that is the limit
    assert estimate.rate == pytest.approx(5.0)
    assert estimate.limit == estimate.rate


def test_a_throttle_just_above_capacity_cuts_by_beta_and_remembers_the_refused_rate() -> None:
    # GIVEN a batch answered at about its rate (so the goodput is no news)
    estimate = RateEstimate(PRIOR_RATE, PRIOR_IN_FLIGHT)
    now = answer_calls(estimate, 0.0, 40, 0.5)
    rate = estimate.rate
    # WHEN one call is refused
    estimate.throttled(now, now - 0.01)
    # THEN the rate is cut by BETA and the refused rate becomes the limit
    assert estimate.rate == pytest.approx(BETA * rate, rel=0.01)
    assert estimate.limit == pytest.approx(rate, rel=0.01)
    assert estimate.throttles == 1


def test_refusals_of_calls_sent_before_the_cut_do_not_cut_again() -> None:
    # GIVEN a batch that has just cut its rate on a throttle
    estimate = RateEstimate(PRIOR_RATE, PRIOR_IN_FLIGHT)
    now = answer_calls(estimate, 0.0, 40, 0.5)
    estimate.throttled(now, now - 0.01)
    rate = estimate.rate
    # WHEN more calls sent before that cut are refused
    estimate.throttled(now + 0.1, now - 0.05)
    estimate.throttled(now + 0.2, now - 0.02)
    # THEN the rate stays (they left at the old rate), though every refusal is counted
    assert estimate.rate == rate
    assert estimate.throttles == 3


def test_the_rate_never_falls_to_nothing() -> None:
    estimate = RateEstimate(PRIOR_RATE, PRIOR_IN_FLIGHT)
    for i in range(200):
        estimate.throttled(float(i), float(i))
    assert estimate.rate > 0 and estimate.ready_at() < math.inf


# Recovery and probing ----------------------------------------------------------------------------


def test_after_a_cut_the_rate_returns_near_the_limit_then_probes_above_it_only_when_calls_wait() -> None:
    # GIVEN a batch (which knew its model's limit) cut from 10/s to 8.5/s
    estimate = RateEstimate(PRIOR_RATE, PRIOR_IN_FLIGHT, rate=10.0, latency=0.5, answers=100, limit=12.0)
    estimate.throttled(0.0, 0.0)
    assert estimate.rate == pytest.approx(8.5)
    # WHEN calls are answered for a while (none waiting for the rate)
    now = answer_calls(estimate, 0.0, 100, 0.5, busy=False)
    # THEN the rate is back at TARGET x the refused rate within seconds, and no higher
    assert estimate.rate == pytest.approx(TARGET * 10.0)
    # AND above it grows by a tiny step per answered call, only while calls wait for the rate
    before = estimate.rate
    estimate.answered(now + 0.5, now, busy=False)
    assert estimate.rate == before
    estimate.answered(now + 0.6, now + 0.1, busy=True)
    assert estimate.rate == pytest.approx(before * (1 + PROBE_PER_CALL))


def test_the_rate_never_asks_for_more_calls_in_flight_than_the_batch_has_threads() -> None:
    estimate = RateEstimate(PRIOR_RATE, PRIOR_IN_FLIGHT, rate=10_000.0, latency=0.5, answers=100)
    estimate.answered(1.0, 0.5, busy=True)
    assert estimate.rate <= MAX_IN_FLIGHT / 0.5 + 1e-9
    assert estimate.window() == MAX_IN_FLIGHT


def test_the_window_follows_rate_times_latency() -> None:
    estimate = RateEstimate(PRIOR_RATE, PRIOR_IN_FLIGHT, rate=20.0, latency=0.25, answers=100)
    assert estimate.window() == math.ceil(20.0 * 0.25 * 1.5) + 1


def test_a_resumed_estimate_continues_where_the_last_invocation_stopped() -> None:
    estimate = RateEstimate(PRIOR_RATE, PRIOR_IN_FLIGHT)
    now = answer_calls(estimate, 0.0, 40, 0.2)
    estimate.throttled(now, now)
    resumed = RateEstimate.resume(PRIOR_RATE, PRIOR_IN_FLIGHT, estimate.to_dict())
    assert (resumed.rate, resumed.limit, resumed.latency) == pytest.approx(
        (estimate.rate, estimate.limit, estimate.latency), rel=1e-5
    )
    assert resumed.answers == 40 and resumed.throttles == 1
    assert RateEstimate.resume(PRIOR_RATE, PRIOR_IN_FLIGHT, None).rate == PRIOR_RATE


# The limiter ---------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, _condition: threading.Condition, timeout: float) -> None:
        self.waits.append(timeout)
        self.now += timeout


def test_the_limiter_spaces_attempts_one_over_the_rate_apart() -> None:
    clock = FakeClock()
    limiter = Limiter(RateEstimate(4.0, 10.0), clock=clock, wait=clock.wait)
    sent = []
    for _ in range(5):
        sent.append(limiter.acquire())
        limiter.release(sent[-1], "error")  # (an outcome that says nothing about the rate)
    assert [round(b - a, 6) for a, b in itertools.pairwise(sent)] == [0.25] * 4
    assert limiter.attempts == 5 and limiter.in_flight == 0


def test_the_limiter_holds_attempts_while_the_window_is_full() -> None:
    # GIVEN a limiter whose window (3, from 2.5 calls in flight) is full
    clock = FakeClock()
    limiter = Limiter(RateEstimate(1000.0, 2.5), clock=clock, wait=clock.wait)
    first = [limiter.acquire() for _ in range(3)]
    assert limiter.in_flight == 3

    # WHEN one more attempt asks, and an answer comes back while it waits
    def answer_arrives(condition: threading.Condition, timeout: float) -> None:
        clock.wait(condition, timeout)
        limiter.release(first[0], "answered")

    limiter._wait = answer_arrives
    limiter.acquire()
    # THEN it went only once a slot was free, and never more than 3 were in flight
    assert limiter.most_in_flight == 3
    assert clock.waits and limiter.attempts == 4


# The hooks on a real boto3 client -------------------------------------------------------------


class ThrottlingModel:
    """Answers DetectCustomLabels on `before-send` (like the local cloud's emulators, inside
    botocore's retry loop): the first `refuse` attempts are refused for throughput."""

    def __init__(self, refuse: int) -> None:
        self.refuse = refuse
        self.attempts = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.attempts += 1
        if self.attempts <= self.refuse:
            body = b'{"__type": "ProvisionedThroughputExceededException", "message": "Rate exceeded."}'
            return AWSResponse(request.url, 400, {"x-amzn-RequestId": "r"}, MockRawResponse(body))
        return AWSResponse(
            request.url, 200, {"x-amzn-RequestId": "r"}, MockRawResponse(b'{"CustomLabels": []}')
        )


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard mode still decides to retry; it just does not sleep between attempts."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


def client_with(model: ThrottlingModel) -> Any:
    client = boto3.client(
        "rekognition",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )
    flow_hooks.install(client)
    client.meta.events.register("before-send.rekognition.DetectCustomLabels", model)
    return client


def detect(client: Any) -> Any:
    return client.detect_custom_labels(
        ProjectVersionArn="arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1",
        Image={"S3Object": {"Bucket": "images-bucket", "Name": "k.jpg"}},
    )


def test_every_attempt_botocore_makes_goes_through_the_limiter(no_backoff: None) -> None:
    # GIVEN a model that refuses the first two attempts, and a batch's limiter on the client
    model = ThrottlingModel(refuse=2)
    client = client_with(model)
    limiter = Limiter(RateEstimate(PRIOR_RATE, PRIOR_IN_FLIGHT))
    # WHEN one call is made inside the batch
    with flow_hooks.pacing(limiter):
        response = detect(client)
    # THEN botocore retried it (standard mode), and each of the 3 attempts was paced and reported
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert model.attempts == limiter.attempts == 3
    assert limiter.estimate.throttles == 2 and limiter.estimate.answers == 1
    assert limiter.in_flight == 0


def test_calls_outside_a_batch_are_not_paced(no_backoff: None) -> None:
    model = ThrottlingModel(refuse=0)
    limiter = Limiter(RateEstimate(PRIOR_RATE, PRIOR_IN_FLIGHT))
    detect(client_with(model))
    assert model.attempts == 1 and limiter.attempts == 0


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (200, None, "answered"),
        (400, "ProvisionedThroughputExceededException", "throttled"),
        (400, "ThrottlingException", "throttled"),
        (500, "InternalServerError", "error"),
        (400, "InvalidImageFormatException", "error"),
    ],
)
def test_attempt_outcomes(status: int, code: str | None, outcome: str) -> None:
    http = AWSResponse("https://x", status, {}, None)
    parsed = {"Error": {"Code": code}} if code else {}
    assert flow_hooks.outcome_of((http, parsed), None) == outcome
    assert flow_hooks.outcome_of(None, ConnectionError()) == "error"


def test_late_wake_ups_do_not_lower_the_rate() -> None:
    # GIVEN a limiter at 10 calls/s whose waits always overshoot by 30 % (a busy machine)
    clock = FakeClock()

    def late(condition: threading.Condition, timeout: float) -> None:
        clock.wait(condition, timeout * 1.3)

    limiter = Limiter(RateEstimate(10.0, 10.0), clock=clock, wait=late)
    # WHEN 101 attempts go one after the other
    sent = []
    for _ in range(101):
        sent.append(limiter.acquire())
        limiter.release(sent[-1], "error")
    # THEN they still average 10 per second: each late start is made up by the next one
    assert sent[-1] - sent[0] == pytest.approx(10.0, abs=0.1)
