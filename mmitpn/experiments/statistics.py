"""Statistics over seeds: mean, sample standard deviation and the 95 %
confidence interval of paired differences (Student's t)."""
import math
from typing import List, Optional, Sequence, Tuple

#: Two-sided 95 % quantiles of Student's t, degrees of freedom 1..30.
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
         2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101,
         2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052,
         2.048, 2.045, 2.042)
#: Beyond 30 degrees of freedom: the normal quantile.
Z_975 = 1.96
#: The rule :func:`paired_verdict` applies, in words (the page prints it).
RULE = ('a paired difference is *measurable* when its 95% confidence '
        'interval, mean ± t(0.975, n−1) · std / √n over the n seeds '
        '(Student\'s t, std with n−1), excludes zero; otherwise the page '
        'says "no measurable difference"')


def mean_std(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (n−1; None for one value).

    Args:
        values (Sequence[float]): At least one number.

    Returns:
        tuple: ``(mean, std)``.
    """
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean)**2 for v in values) / (n - 1))


def t_975(dof: int) -> float:
    """Two-sided 95 % quantile of Student's t.

    Args:
        dof (int): Degrees of freedom, at least 1.

    Returns:
        float: From :data:`T_975` up to 30 degrees, :data:`Z_975` beyond.
    """
    if dof < 1:
        raise ValueError(f'Student\'s t needs at least 1 degree of freedom, '
                         f'got {dof}.')
    return T_975[dof - 1] if dof <= len(T_975) else Z_975


def paired_verdict(diffs: List[float]) -> dict:
    """Summary of paired differences ``x - d`` over seeds, judged by
    :data:`RULE`.

    Args:
        diffs (list[float]): One difference per seed.

    Returns:
        dict: ``mean``, ``std``, ``ci`` (``(low, high)`` or None) and
        ``measurable`` (bool, or None with fewer than two seeds).
    """
    mean, std = mean_std(diffs)
    if std is None:
        return dict(mean=mean, std=None, ci=None, measurable=None)
    half = t_975(len(diffs) - 1) * std / math.sqrt(len(diffs))
    return dict(mean=mean, std=std, ci=(mean - half, mean + half),
                measurable=not (mean - half <= 0 <= mean + half))
