"""The statistics the decisions rest on: exact binomial and hypergeometric bounds checked against
closed forms and direct sums, and by simulation, the promise each makes."""

from __future__ import annotations

import functools
import math
import random

import pytest
from labeling_loop.evaluation.intervals import (
    audit_size_needed,
    binomial_cdf,
    binomial_upper,
    clopper_pearson,
    decimals_for,
    defects_interval,
    defects_upper,
    format_estimate,
    hypergeometric_cdf,
    wilson_interval,
)


def exact_binomial_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


@pytest.mark.parametrize(("k", "n", "p"), [(3, 50, 0.05), (0, 10, 0.3), (40, 100, 0.5), (7, 1000, 0.01)])
def test_the_binomial_cdf_is_the_direct_sum(k: int, n: int, p: float) -> None:
    assert binomial_cdf(k, n, p) == pytest.approx(exact_binomial_cdf(k, n, p), rel=1e-9)


def test_clopper_pearson_on_closed_forms() -> None:
    # With none wrong the upper bound solves (1 - p)^n = alpha: 59 images vouch for 5 % at 95 %.
    assert binomial_upper(0, 59, 0.05) == pytest.approx(1 - 0.05 ** (1 / 59), abs=1e-9)
    # With all wrong the lower bound solves p^n = alpha / 2.
    assert clopper_pearson(20, 20)[0] == pytest.approx(0.025 ** (1 / 20), abs=1e-9)
    assert clopper_pearson(0, 0) == (0.0, 1.0)


def test_the_hypergeometric_cdf_is_the_direct_sum() -> None:
    population, defects, sample = 50, 12, 10
    total = math.comb(population, sample)
    for x in range(sample + 1):
        direct = sum(
            math.comb(defects, k) * math.comb(population - defects, sample - k) for k in range(x + 1)
        )
        assert hypergeometric_cdf(x, population, defects, sample) == pytest.approx(direct / total, rel=1e-9)


def test_a_sample_of_the_whole_population_knows_the_count_exactly() -> None:
    # The finite-population correction taken to its end: nothing left unseen, no uncertainty.
    assert defects_interval(7, 40, 40) == (7, 7)
    # and a bigger sample of the same population never widens the interval
    widths = [defects_interval(round(0.1 * n), n, 400)[1] - defects_interval(round(0.1 * n), n, 400)[0]
              for n in (20, 50, 100, 200, 400)]  # fmt: skip
    assert widths == sorted(widths, reverse=True) and widths[-1] == 0


def test_the_audit_size_needed_is_the_smallest_from_which_every_audit_can_pass() -> None:
    def passes(n: int, population: int) -> bool:
        return defects_upper(0, n, population) <= 0.05 * (population - n)

    for population in (142, 1000, 100_000):
        needed = audit_size_needed(0.05, population)
        assert needed is not None and passes(needed, population)
        assert all(passes(n, population) for n in range(needed, min(population, needed + 400)))
    # In a small population a bigger audit can fail where a smaller one passed (one possible wrong
    # image weighs more among fewer left to ship): what is needed is where that stops.
    assert passes(75, 142) and not passes(87, 142) and audit_size_needed(0.05, 142) == 135
    assert audit_size_needed(0.05, 100_000) == 59  # the binomial's 59, nearly


@functools.cache
def _interval(x: int, n: int, population: int) -> tuple[int, int]:
    return defects_interval(x, n, population)


@pytest.mark.parametrize("rate", [0.02, 0.1, 0.3])
@pytest.mark.parametrize("audited", [20, 60, 200])  # 200 of 400: an audit of half the candidates
def test_the_audit_interval_covers_the_truth_in_at_least_93_percent_of_draws(
    rate: float, audited: int
) -> None:
    # GIVEN 400 auto-accept candidates of which a known number are wrong
    population = 400
    wrong = round(rate * population)
    rng = random.Random(f"{rate}-{audited}")
    images = [True] * wrong + [False] * (population - wrong)
    covered_rate = covered_unaudited = 0
    draws = 1000
    for _ in range(draws):
        # WHEN the plan audits a simple random sample of them
        sample = rng.sample(range(population), audited)
        found = sum(images[i] for i in sample)
        low, high = _interval(found, audited, population)
        # THEN the interval for the candidates' wrong images holds the truth
        covered_rate += low <= wrong <= high
        # AND the predictive interval for the wrong images nobody looked at holds theirs
        covered_unaudited += low - found <= wrong - found <= high - found
    assert covered_rate / draws >= 0.93
    assert covered_unaudited / draws >= 0.93


def test_a_gate_on_the_upper_bound_lets_too_many_wrong_images_through_rarely() -> None:
    # GIVEN runs of 1,000 candidates whose true error rate ranges from 0.5 % to 8 %, audited 300
    population, audited, target = 1000, 300, 0.05
    rng = random.Random(11)
    shipped = broken_promises = 0
    draws = 1000
    for _ in range(draws):
        rate = rng.uniform(0.005, 0.08)
        images = [rng.random() < rate for _ in range(population)]
        sample = set(rng.sample(range(population), audited))
        found = sum(images[i] for i in sample)
        shipped_wrong = sum(images[i] for i in range(population) if i not in sample)
        # WHEN the gate ships on its one-sided 95 % upper bound
        upper = (defects_upper(found, audited, population, 0.05) - found) / (population - audited)
        if upper <= target:
            shipped += 1
            broken_promises += shipped_wrong / (population - audited) > target
    # THEN it ships often (the test is not vacuous) and breaks its promise in at most 5 % of runs
    assert shipped / draws >= 0.2
    assert broken_promises / draws <= 0.05


def test_wilson_interval_on_hand_checked_cases() -> None:
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=5e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=5e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_figures_are_printed_at_the_precision_their_interval_has() -> None:
    assert format_estimate(0.8712, 0.84, 0.90) == "0.87 (0.84-0.90)"
    assert format_estimate(0.8712, 0.868, 0.874) == "0.871 (0.868-0.874)"
    assert format_estimate(0.5, 0.2, 0.8) == "0.5 (0.2-0.8)"
    assert format_estimate(0.8552, 0.8552, 0.8552) == "0.855 (exact)"
    assert decimals_for(0.5, 0.5) == 4
