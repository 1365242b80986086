"""The statistics the run's decisions rest on, in the standard library only (no numpy in the layer).

- **Exact binomial** (Clopper and Pearson 1934): bounds for a rate from x events in n independent
  trials, through the regularized incomplete beta function. Used where the figure is about images
  to come (a threshold's error rate on the next run's images).
- **Exact hypergeometric**: bounds for the number D of wrong images among the N of a finite
  population, from x wrong in a simple random sample of n drawn without replacement. Used where
  the figure is about this run's images (the audit of auto-accepted images): it is never wider
  than the binomial one and shrinks to nothing as the sample takes the whole population (the
  finite-population correction, exactly; Cochran, *Sampling Techniques*, 3rd ed., ch. 3).
- **Wilson** (1927) score interval, on an effective sample size where the figure is a weighted
  (stratified) ratio: Brown, Cai and DasGupta (2001), "Interval Estimation for a Binomial
  Proportion", Statistical Science 16(2); Kish's effective size (sum w)^2 / sum w^2.

Conventions: `confidence` is two-sided (0.95: 2.5 % each side); `alpha` of a one-sided bound is the
chance it is wrong (0.05: a 95 % upper bound). Both bounds of a two-sided exact interval hold
their side at (1 - confidence) / 2, so the interval covers at least `confidence` of the time.
"""

from __future__ import annotations

import math
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)  # 1.959963...
_EPS = 1e-14


# Incomplete beta and the binomial -----------------------------------------------------------------


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        h *= step
        if abs(step - 1.0) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), a, b > 0, 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def binomial_cdf(k: float, n: float, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), continued to non-integer k and n through the incomplete
    beta (I_{1-p}(n - k, k + 1)), so weighted counts on an effective size can be tested too."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    return betainc(n - k, k + 1.0, 1.0 - p)


def _beta_quantile(a: float, b: float, q: float) -> float:
    """x with I_x(a, b) = q, by bisection (I is increasing in x)."""
    low, high = 0.0, 1.0
    for _ in range(200):
        mid = (low + high) / 2.0
        if betainc(a, b, mid) < q:
            low = mid
        else:
            high = mid
        if high - low < 1e-12:
            break
    return (low + high) / 2.0


def binomial_upper(x: float, n: float, alpha: float = 0.05) -> float:
    """One-sided exact (Clopper-Pearson) upper bound of a rate: wrong with probability <= alpha."""
    if n <= 0:
        return 1.0
    if x >= n:
        return 1.0
    return _beta_quantile(x + 1.0, n - x, 1.0 - alpha)


def binomial_lower(x: float, n: float, alpha: float = 0.05) -> float:
    if n <= 0 or x <= 0:
        return 0.0
    return _beta_quantile(x, n - x + 1.0, alpha)


def clopper_pearson(x: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided exact interval of a rate from x events in n trials."""
    alpha = (1.0 - confidence) / 2.0
    return binomial_lower(x, n, alpha), binomial_upper(x, n, alpha)


# The hypergeometric: a finite population sampled without replacement ------------------------------


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def hypergeometric_cdf(x: int, population: int, defects: int, sample: int) -> float:
    """P(X <= x): X wrong images in a simple random sample of `sample` from `population` images of
    which `defects` are wrong."""
    low = max(0, sample - (population - defects))
    high = min(sample, defects)
    if x < low:
        return 0.0
    if x >= high:
        return 1.0
    log_total = _log_comb(population, sample)
    return min(
        1.0,
        sum(
            math.exp(_log_comb(defects, k) + _log_comb(population - defects, sample - k) - log_total)
            for k in range(low, x + 1)
        ),
    )


def _check_sample(x: int, sample: int, population: int) -> None:
    if not 0 <= x <= sample <= population:
        raise ValueError(f"need 0 <= x ({x}) <= sample ({sample}) <= population ({population})")


def defects_upper(x: int, sample: int, population: int, alpha: float = 0.05) -> int:
    """The largest number of wrong images D in the population still consistent with x wrong in
    the sample: P(X <= x | D) > alpha. An exact one-sided upper bound (coverage >= 1 - alpha)."""
    _check_sample(x, sample, population)
    low, high = x, population - (sample - x)  # D cannot be outside these, whatever the sample
    # P(X <= x | D) falls as D grows: find the last D where it is still above alpha.
    while low < high:
        mid = (low + high + 1) // 2
        if hypergeometric_cdf(x, population, mid, sample) > alpha:
            low = mid
        else:
            high = mid - 1
    return low


def defects_lower(x: int, sample: int, population: int, alpha: float = 0.05) -> int:
    """The smallest D consistent with x wrong in the sample: P(X >= x | D) > alpha."""
    _check_sample(x, sample, population)
    if x == 0:
        return 0
    low, high = x, population - (sample - x)
    while low < high:
        mid = (low + high) // 2
        if 1.0 - hypergeometric_cdf(x - 1, population, mid, sample) > alpha:
            high = mid
        else:
            low = mid + 1
    return low


def defects_interval(x: int, sample: int, population: int, confidence: float = 0.95) -> tuple[int, int]:
    """Two-sided exact interval for the number of wrong images in a finite population."""
    alpha = (1.0 - confidence) / 2.0
    return defects_lower(x, sample, population, alpha), defects_upper(x, sample, population, alpha)


def audit_size_needed(target: float, population: int, alpha: float = 0.05) -> int | None:
    """The smallest audit that vouches for `target` when it finds nothing wrong, and so does every
    larger one: the least n with (defects_upper(0, m, N)) / (N - m) <= target for all m >= n below N.
    (In small populations the bound on the unaudited images' rate is not monotone in n: a larger
    audit leaves fewer images to ship, and one possible wrong image weighs more among them.) None
    when only auditing everything can."""

    def passes(n: int) -> bool:
        return defects_upper(0, n, population, alpha) <= target * (population - n)

    if population > SCAN_LIMIT:  # the discreteness is gone this large: the first that passes
        return next((n for n in range(1, population) if passes(n)), None)
    needed = None
    for n in range(population - 1, 0, -1):
        if not passes(n):
            break
        needed = n
    return needed


SCAN_LIMIT = 20_000


# Wilson on an effective size (weighted ratios) -------------------------------------------------------


def wilson_interval(successes: float, trials: float, z: float = Z95) -> tuple[float, float]:
    """(low, high) for the proportion successes/trials; (0.0, 1.0) when there are no trials.
    `successes` and `trials` may be fractional (weighted counts scaled to an effective size)."""
    if trials <= 0:
        return 0.0, 1.0
    p = min(max(successes / trials, 0.0), 1.0)
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    # p = 0 or 1 makes one bound exactly 0 or 1 in exact arithmetic; keep float noise out of it.
    low = 0.0 if p == 0.0 else max(0.0, centre - half)
    high = 1.0 if p == 1.0 else min(1.0, centre + half)
    return low, high


def effective_size(weight_sum: float, weight_square_sum: float) -> float:
    """Kish's effective sample size (sum w)² / sum w² of a weighted sample: the number of
    unweighted observations that would give the same variance. Equals n when all weights are equal."""
    if weight_square_sum <= 0:
        return 0.0
    return weight_sum * weight_sum / weight_square_sum


# Printing a figure at the precision it has -----------------------------------------------------------


def decimals_for(low: float, high: float) -> int:
    """Digits after the point that the interval's half-width supports: 0.84-0.90 has one
    significant digit in 0.03, so two decimals; at least 1, at most 4."""
    half = (high - low) / 2.0
    if half <= 0:
        return 4
    return max(1, min(4, math.ceil(-math.log10(half))))


def format_estimate(value: float, low: float, high: float) -> str:
    """`0.87 (0.84-0.90)`: the estimate and its interval, each to the interval's precision; a figure
    with no sampling error (every image of the population measured) is `0.855 (exact)`."""
    if low == high:
        return f"{value:.3f} (exact)"
    places = decimals_for(low, high)
    return f"{value:.{places}f} ({low:.{places}f}-{high:.{places}f})"
