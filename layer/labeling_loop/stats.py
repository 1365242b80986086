"""Small statistics the report needs: the Wilson score interval for a proportion, and Kish's
effective sample size for weighted counts. Standard library only.

Wilson (1927) interval for x successes in n trials at confidence level 1 - alpha, z = the normal
quantile 1 - alpha/2 (1.959964 for 95 %):

    centre = (p + z²/2n) / (1 + z²/n),  half = z * sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)

It stays inside [0, 1], is never empty at p = 0 or 1 (where the normal interval collapses), and its
coverage stays close to the nominal level for small n (Brown, Cai and DasGupta 2001, "Interval
Estimation for a Binomial Proportion", Statistical Science 16(2)).
"""

from __future__ import annotations

import math
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)  # 1.959963...


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


def weighted_wilson(
    success_weight: float, total_weight: float, weight_square_sum: float, z: float = Z95
) -> tuple[float, float]:
    """Wilson interval of a weighted proportion: the weighted share, on Kish's effective size."""
    if total_weight <= 0:
        return 0.0, 1.0
    n_eff = effective_size(total_weight, weight_square_sum)
    return wilson_interval(success_weight / total_weight * n_eff, n_eff, z)
