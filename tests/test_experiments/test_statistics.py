"""Tests of :mod:`mmitpn.experiments.statistics` on written-out numbers."""
import math

import pytest

from mmitpn.experiments.statistics import (mean_std, paired_verdict,
                                           t_975)


def test_mean_and_sample_std():
    # mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, / (n-1)
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == pytest.approx(2.5)
    assert std == pytest.approx(math.sqrt(5 / 3))
    assert mean_std([0.7]) == (pytest.approx(0.7), None)


def test_t_quantiles():
    # tabulated two-sided 95% quantiles
    assert t_975(1) == 12.706 and t_975(2) == 4.303 and t_975(30) == 2.042
    assert t_975(31) == 1.96
    with pytest.raises(ValueError, match='at least 1 degree of freedom'):
        t_975(0)


def test_paired_verdict_on_written_out_numbers():
    # mean 0.02, sd 0.01, n 3: half-width 4.303 * 0.01 / sqrt(3) = 0.02484
    pv = paired_verdict([0.01, 0.02, 0.03])
    assert pv['mean'] == pytest.approx(0.02)
    assert pv['std'] == pytest.approx(0.01)
    assert pv['ci'] == pytest.approx((0.02 - 0.024843, 0.02 + 0.024843),
                                     abs=1e-5)
    assert pv['measurable'] is False
    # mean -0.05, sd 0.01: the interval [-0.0748, -0.0252] excludes 0
    pv = paired_verdict([-0.04, -0.05, -0.06])
    assert pv['measurable'] is True
    assert pv['ci'] == pytest.approx((-0.07484, -0.02516), abs=1e-5)
    # four seeds use t(3) = 3.182
    pv = paired_verdict([0.1, 0.2, 0.3, 0.4])
    sd = math.sqrt((0.15**2 * 2 + 0.05**2 * 2) / 3)
    assert pv['ci'][1] - pv['mean'] == pytest.approx(3.182 * sd / 2)
    # one seed: no spread, no verdict
    assert paired_verdict([0.3]) == dict(mean=pytest.approx(0.3), std=None,
                                         ci=None, measurable=None)
