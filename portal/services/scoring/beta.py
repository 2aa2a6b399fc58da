"""The beta posterior of a shrunk rate: the regularized incomplete beta function and its
inverse, written out so the portal needs no numerical library. Pure functions."""

from __future__ import annotations

import math
from functools import lru_cache


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
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
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-12:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def beta_ppf(p: float, a: float, b: float) -> float:
    """The p-quantile of Beta(a, b): Newton/Halley steps from a close first guess (after
    Numerical Recipes' invbetai), bisection-safe."""
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    a1, b1 = a - 1.0, b - 1.0
    if a >= 1.0 and b >= 1.0:
        pp = p if p < 0.5 else 1.0 - p
        t = math.sqrt(-2.0 * math.log(pp))
        x = (2.30753 + t * 0.27061) / (1.0 + t * (0.99229 + t * 0.04481)) - t
        if p < 0.5:
            x = -x
        al = (x * x - 3.0) / 6.0
        h = 2.0 / (1.0 / (2.0 * a - 1.0) + 1.0 / (2.0 * b - 1.0))
        w = (x * math.sqrt(al + h) / h
             - (1.0 / (2.0 * b - 1.0) - 1.0 / (2.0 * a - 1.0)) * (al + 5.0 / 6.0 - 2.0 / (3.0 * h)))
        x = a / (a + b * math.exp(2.0 * w))
    else:
        lna, lnb = math.log(a / (a + b)), math.log(b / (a + b))
        t = math.exp(a * lna) / a
        u = math.exp(b * lnb) / b
        w = t + u
        x = (p * w * a) ** (1.0 / a) if p < t / w else 1.0 - (b * w * (1.0 - p)) ** (1.0 / b)
    afac = -math.lgamma(a) - math.lgamma(b) + math.lgamma(a + b)
    lo, hi = 0.0, 1.0
    previous = None
    for _ in range(200):
        if not lo < x < hi:
            x = (lo + hi) / 2.0
        err = betainc(a, b, x) - p
        if abs(err) < 1e-12:
            return x
        if err < 0:
            lo = x
        else:
            hi = x
        density = math.exp(a1 * math.log(x) + b1 * math.log1p(-x) + afac)
        new = None
        if density > 0.0 and (previous is None or abs(err) < 0.5 * abs(previous)):
            u = err / density
            new = x - u / (1.0 - 0.5 * min(1.0, u * (a1 / x - b1 / (1.0 - x))))
        if new is None or not lo < new < hi:
            new = (lo + hi) / 2.0  # Newton would leave the bracket or is crawling: bisect
        previous = err
        if abs(new - x) < 1e-11 or hi - lo < 1e-13:
            return new
        x = new
    return x


@lru_cache(maxsize=65536)
def posterior(x: float, n: float, m: float, k: float, level: float) -> tuple:
    """Shrunk rate (x + k·m) / (n + k) and the central `level` interval of the posterior
    Beta(x + k·m, n − x + k·(1 − m))."""
    a = max(x + k * m, 1e-3)
    b = max(n - x + k * (1.0 - m), 1e-3)
    tail = (1.0 - level) / 2.0
    return (x + k * m) / (n + k), (beta_ppf(tail, a, b), beta_ppf(1.0 - tail, a, b))
