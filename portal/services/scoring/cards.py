"""From figures to a card: rates shrunk toward the portfolio (a beta prior, `(x + k·m) / (n + k)`)
with the posterior's interval, hours weighted toward the portfolio's typical value, each KPI
scored 0–1 between its anchors, and the composite 0–100 from the weights with each KPI's
contribution. Pure functions: the card is the dict a snapshot stores."""

from __future__ import annotations

from dataclasses import dataclass, field

from .beta import posterior
from .disclosure import withheld
from .figures import Extras, Figures
from .kpis import KPI, KPIS
from .settings import setting
from .weights import Weights


@dataclass
class Priors:
    """What an organisation's card is shrunk toward and scored against: per KPI the portfolio
    value (rates: pooled rate; hours: the referral-weighted typical median; volume: the 90th
    percentile partner)."""

    values: dict = field(default_factory=dict)


def portfolio_priors(per_org: dict[int, Figures]) -> Priors:
    """Pool the organisations' figures of one period into the portfolio's priors."""
    priors = Priors()
    for kpi in KPIS:
        name = kpi.name
        if kpi.kind == "rate":
            x = sum(f.rate(name).x for f in per_org.values())
            n = sum(f.rate(name).n for f in per_org.values())
            priors.values[name] = {"value": x / n if n else None, "x": x, "n": n}
        elif kpi.kind == "hours":
            pairs = [(h.n, h.value) for h in (f.hours_of(name) for f in per_org.values()) if h.n]
            n = sum(p[0] for p in pairs)
            value = sum(p[0] * p[1] for p in pairs) / n if n else None
            priors.values[name] = {"value": value, "n": n}
        else:
            values = sorted(f.total(name) for f in per_org.values() if f.total(name))
            total = sum(values)
            p90 = values[min(len(values) - 1, int(0.9 * (len(values) - 1) + 0.5))] if values \
                else None
            priors.values[name] = {"value": total, "p90": p90, "n": len(values)}
    return priors


def priors_from_snapshot(kpis: dict | None) -> Priors:
    """The priors a stored portfolio card holds (its `kpis`)."""
    return Priors({name: {"value": v.get("value"), "n": v.get("n"), "x": v.get("x"),
                          "p90": v.get("p90")} for name, v in (kpis or {}).items()})


def score(kpi: KPI, value: float | None, prior: dict) -> float | None:
    """0 at the KPI's worst anchor, 1 at its best; volume against the 90th-percentile partner."""
    if value is None:
        return None
    if kpi.worst is None:
        ref = prior.get("p90")
        return min(1.0, value / ref) if ref else None
    span = kpi.best - kpi.worst
    return min(1.0, max(0.0, (value - kpi.worst) / span))


def _entry(kpi: KPI, figures: Figures, prior: dict, k: float, level: float) -> dict:
    m = prior.get("value")
    entry: dict = {"raw": None, "value": None, "n": 0, "interval": None}
    if kpi.kind == "rate":
        rate = figures.rate(kpi.name)
        x, n = rate.x, rate.n
        entry.update(n=int(n), x=int(x), raw=(x / n) if n else None)
        if m is not None:
            entry["value"], interval = posterior(x, n, m, k, level)
            entry["interval"] = [round(interval[0], 4), round(interval[1], 4)]
        else:
            entry["value"] = entry["raw"]
    elif kpi.kind == "hours":
        hours = figures.hours_of(kpi.name)
        n = hours.n
        raw = hours.value if n else None
        entry.update(n=int(n), raw=raw)
        if kpi.shrink and m is not None:
            entry["value"] = (n * (raw or 0.0) + k * m) / (n + k)
        else:
            entry["value"] = raw
    else:
        total = figures.total(kpi.name)
        entry.update(raw=total, value=total, n=figures.sample_size)
    entry["score"] = score(kpi, entry["value"], prior)
    return entry


def _composite(kpis: dict, weights: Weights, left_out: frozenset[str] = frozenset()
               ) -> float | None:
    """Fill in each KPI's weight, points and contribution; the composite 0-100. Only KPIs with a
    weight and a score take part, except those `left_out`; their weights are renormalised."""
    used = {name: w for name, w in weights.weights.items()
            if w > 0 and kpis[name]["score"] is not None and name not in left_out}
    total_weight = sum(used.values())
    composite = 0.0
    for name, entry in kpis.items():
        w = used.get(name, 0.0)
        entry["weight"] = weights.weights.get(name, 0.0)
        entry["max_points"] = round(100.0 * w / total_weight, 2) if total_weight else 0.0
        contribution = 100.0 * w * entry["score"] / total_weight if w and total_weight else 0.0
        entry["contribution"] = round(contribution, 2)
        composite += contribution
        for key in ("value", "raw", "score"):
            if entry[key] is not None:
                entry[key] = round(entry[key], 6)
    return round(composite, 1) if total_weight else None


def _extra(extras: Extras, decided: float) -> dict:
    return {
        "mix": {"1": int(extras.class_1), "2": int(extras.class_2), "3": int(extras.class_3)},
        "split": {
            "decided": int(decided),
            "bank_hours": extras.bank_seconds / decided / 3600 if decided else None,
            "partner_hours": extras.partner_seconds / decided / 3600 if decided else None,
        },
        "requested_amount": extras.requested_amount,
    }


def card(figures: Figures, priors: Priors, weights: Weights, *, k: float | None = None,
         level: float | None = None) -> dict:
    """One organisation's card for one period: {kpis, composite, sample_size, extra}."""
    k = float(setting("SCORING_PRIOR_STRENGTH") if k is None else k)
    level = float(setting("SCORING_INTERVAL") if level is None else level)
    kpis = {kpi.name: _entry(kpi, figures, priors.values.get(kpi.name, {}), k, level)
            for kpi in KPIS}
    # Credit performance on too few loans to show the partner takes no part in the composite (nor
    # so in the tier): otherwise the composite the partner reads, less the points it can see,
    # would give away the points of the figures it cannot (disclosure.py).
    composite = _composite(kpis, weights, frozenset(
        kpi.name for kpi in KPIS if withheld(kpi, kpis[kpi.name])))
    return {"kpis": kpis, "composite": composite, "sample_size": figures.sample_size,
            "extra": _extra(figures.extras, figures.rate("approval_rate").n)}


def portfolio_card(priors: Priors, figures: list[Figures]) -> dict:
    """The portfolio's row for one period: the priors themselves, and the partners' sums."""
    kpis = {}
    for kpi in KPIS:
        prior = priors.values.get(kpi.name, {})
        kpis[kpi.name] = {"value": prior.get("value"), "raw": prior.get("value"),
                          "n": int(prior.get("n") or 0), "x": int(prior.get("x") or 0),
                          "p90": prior.get("p90"), "interval": None, "contribution": None}
    extras = Extras()
    for f in figures:
        extras.add(f.extras)
    extra = _extra(extras, kpis["approval_rate"]["n"])
    extra["partners"] = len(figures)
    return {"kpis": kpis, "sample_size": int(sum(f.total("referrals") for f in figures)),
            "extra": extra}
