"""Statistics for repeated measures: every number carries its n, spread and raw samples."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _st

from suite.core.schema import UNSTABLE_CV, metric_spec


def summarize(samples: Sequence[float]) -> dict:
    """Median, mean, sample stddev, 95% CI of the mean (Student t), n, CV, raw samples.

    `value` is the median: robust to one slow repetition. The CI is of the mean, which is
    what a t-interval estimates; with n == 1 there is no spread and the CI is absent.
    `unstable` is True when the coefficient of variation exceeds 5%.
    """
    xs = [float(x) for x in samples]
    if not xs:
        raise ValueError("summarize() needs at least one sample")
    if any(not math.isfinite(x) for x in xs):
        raise ValueError(f"non-finite sample in {xs}")
    arr = np.asarray(xs)
    n = len(xs)
    mean = float(arr.mean())
    median = float(np.median(arr))
    if n >= 2:
        stddev = float(arr.std(ddof=1))
        half = float(_st.t.ppf(0.975, n - 1)) * stddev / math.sqrt(n)
        ci95: list[float] | None = [mean - half, mean + half]
        cv = stddev / abs(mean) if mean else math.inf
    else:
        stddev, ci95, cv = 0.0, None, 0.0
    return {
        "value": median,
        "median": median,
        "mean": mean,
        "stddev": stddev,
        "ci95": ci95,
        "n": n,
        "cv": cv,
        "unstable": bool(cv > UNSTABLE_CV),
        "samples": xs,
    }


def metric(name: str, samples: Sequence[float] | float) -> dict:
    """A run.json metric entry: the schema's unit and direction plus the summary."""
    spec = metric_spec(name)
    if isinstance(samples, (int, float)):
        entry = {"value": float(samples)}
    else:
        entry = summarize(samples)
    return {"unit": spec.unit, "higher_is_better": spec.higher_is_better, **entry}


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    return float(np.percentile(np.asarray(samples, dtype=float), q))
