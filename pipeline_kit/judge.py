"""The canary judge: a one-sided Mann-Whitney U test (normal approximation with tie correction
and continuity correction), and the ratio of medians as the effect size (of means when both
medians are zero: mostly-zero series, such as error rates, rise in their spikes). Hand-written because
it is thirty lines; scipy would be the only reason to pull a scientific stack into a CI job."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Judgement:
    p_value: float  # of "the canary is worse" being chance
    ratio: float  # median(canary) / median(stable) (means when both are 0), inverted when lower is worse
    canary_median: float
    stable_median: float


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def mann_whitney_greater(x: Sequence[float], y: Sequence[float]) -> float:
    """One-sided p-value that values of `x` tend to be greater than those of `y`."""
    n1, n2 = len(x), len(y)
    n = n1 + n2
    ranks = _ranks([*x, *y])
    u = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    counts: dict[float, int] = {}
    for value in (*x, *y):
        counts[value] = counts.get(value, 0) + 1
    ties = sum(t**3 - t for t in counts.values())
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return 1.0  # every value the same: nothing is greater
    z = (u - n1 * n2 / 2 - 0.5) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


def judge(canary: Sequence[float], stable: Sequence[float], higher_is_worse: bool = True) -> Judgement:
    worse, better = (canary, stable) if higher_is_worse else ([-v for v in canary], [-v for v in stable])
    p_value = mann_whitney_greater(worse, better)
    canary_median, stable_median = statistics.median(canary), statistics.median(stable)
    top, bottom = (canary_median, stable_median) if higher_is_worse else (stable_median, canary_median)
    if top == bottom == 0:  # equal medians of zero say nothing of the spikes around them
        canary_mean, stable_mean = statistics.fmean(canary), statistics.fmean(stable)
        top, bottom = (canary_mean, stable_mean) if higher_is_worse else (stable_mean, canary_mean)
    # a zero baseline: no rise is 1, any rise is beyond any tolerance (Kayenta#377 left it unjudged)
    ratio = (1.0 if top == 0 else math.inf) if bottom == 0 else top / bottom
    return Judgement(p_value, ratio, canary_median, stable_median)
