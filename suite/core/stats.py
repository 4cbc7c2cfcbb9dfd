"""Statistics for repeated measures: every number carries its n, spread and raw samples."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _st

from suite.core.schema import CI_LOG_T, CI_T, SMALL_N, UNSTABLE_CV, metric_spec


def summarize(samples: Sequence[float], *, positive: bool = False) -> dict:
    """Median, mean, sample stddev, a 95% CI, n, CV, raw samples.

    `value` is the median: robust to one slow repetition. For a `positive` quantity (a throughput,
    a time, bytes, energy) whose samples are all above 0, the CI is a Student-t interval on the log
    scale (of the geometric mean), so it can never reach below 0 as a t-interval of the mean does with
    few spread samples (n=3: [-2.9, 40.7] tok/s); otherwise the t-interval of the mean. `ci_method`
    says which, `small_n` flags an interval from fewer than 5 samples; with n == 1 there is no
    spread and no CI. `unstable` is True when the coefficient of variation exceeds 5%.
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
    extra: dict = {}
    if n >= 2:
        stddev = float(arr.std(ddof=1))
        t = float(_st.t.ppf(0.975, n - 1))
        if positive and bool((arr > 0).all()):
            logs = np.log(arr)
            centre, half = float(logs.mean()), t * float(logs.std(ddof=1)) / math.sqrt(n)
            ci95: list[float] | None = [math.exp(centre - half), math.exp(centre + half)]
            extra["ci_method"] = CI_LOG_T
        else:
            half = t * stddev / math.sqrt(n)
            ci95 = [mean - half, mean + half]
            extra["ci_method"] = CI_T
        extra["small_n"] = n < SMALL_N
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
        **extra,
    }


def metric(name: str, samples: Sequence[float] | float) -> dict:
    """A run.json metric entry: the schema's unit and direction plus the summary."""
    spec = metric_spec(name)
    if isinstance(samples, (int, float)):
        entry = {"value": float(samples)}
    else:
        entry = summarize(samples, positive=spec.positive)
    return {"unit": spec.unit, "higher_is_better": spec.higher_is_better, **entry}


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    return float(np.percentile(np.asarray(samples, dtype=float), q))
