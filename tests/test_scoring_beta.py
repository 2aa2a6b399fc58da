"""The beta maths against reference values computed independently of the code under test:
exact binomial sums for integer parameters, and the arcsine law for Beta(1/2, 1/2)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from portal.services.scoring import beta_ppf, betainc, posterior


def _binomial_tail(a: int, b: int, x: Fraction) -> float:
    """I_x(a, b) for whole a, b: P(at least a successes in a + b - 1 trials), exactly."""
    n = a + b - 1
    return float(sum(math.comb(n, j) * x ** j * (1 - x) ** (n - j) for j in range(a, n + 1)))


@pytest.mark.parametrize("a,b", [(1, 1), (2, 3), (5, 5), (12, 30), (40, 7), (90, 210)])
@pytest.mark.parametrize("x", ["1/100", "1/10", "3/10", "1/2", "17/20", "99/100"])
def test_incomplete_beta_against_the_binomial_sum(a, b, x):
    exact = _binomial_tail(a, b, Fraction(x))
    assert betainc(a, b, float(Fraction(x))) == pytest.approx(exact, rel=1e-9, abs=1e-13)


@pytest.mark.parametrize("p", [0.01, 0.05, 0.25, 0.5, 0.9, 0.95, 0.999])
def test_arcsine_law(p):
    x = math.sin(math.pi * p / 2) ** 2  # the p-quantile of Beta(1/2, 1/2)
    assert betainc(0.5, 0.5, x) == pytest.approx(p, abs=1e-10)
    assert beta_ppf(p, 0.5, 0.5) == pytest.approx(x, abs=1e-9)


def test_posterior_interval_against_the_binomial_sum():
    # 6 of 20 toward a portfolio rate of 0.25 with k = 20: Beta(11, 29); whole parameters, so
    # the interval's ends have exactly 5% and 95% below them.
    value, (low, high) = posterior(6, 20, 0.25, 20, 0.90)
    assert value == pytest.approx(11 / 40, abs=1e-15)
    assert _binomial_tail(11, 29, Fraction(low)) == pytest.approx(0.05, abs=1e-9)
    assert _binomial_tail(11, 29, Fraction(high)) == pytest.approx(0.95, abs=1e-9)
