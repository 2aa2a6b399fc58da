"""The KPI registry: each scorecard measure defined once, with its SQL, anchors and default weight.
A new KPI is one entry here (docs/scoring.md); the aggregation, cards and pages read the list."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import literal, not_
from sqlalchemy.sql.expression import ColumnElement

from portal.i18n import lazy_gettext as _l

from ..decisions import lent_amount
from .expressions import (
    BANK_SECONDS_TO_DECISION,
    DECISION_TO_DISBURSEMENT,
    EVER_CONFLICT,
    LP,
    SLA_JOIN,
    WITHIN_SLA,
    R,
)


@dataclass(frozen=True)
class KPI:
    """One scorecard measure.

    kind: rate (num/den, a fraction 0-1) | hours (a percentile of `measure` seconds) | count |
    amount (a sum of `measure`). source: which milestone date puts a referral in a period.
    For the "epd" source, `num` is a loan-statement condition that any statement in the loan's
    first SCORING_EPD_DAYS meets. direction: whether higher or lower is better. worst/best: the
    values that score 0 and 1 (None for volume KPIs, which score against the portfolio's 90th
    percentile partner).
    """

    name: str
    label: object
    kind: str
    source: str
    direction: str
    definition: object
    num: ColumnElement | None = None
    den: ColumnElement | None = None
    measure: ColumnElement | None = None
    quantile: float | None = None
    shrink: bool = True
    worst: float | None = None
    best: float | None = None
    weight: float = 0.0  # default weight; the admin sets the ones in force
    partner_visible: bool = True
    # Per-loan credit performance: withheld from the partner's own card on too few loans, where
    # it would tell the partner how identifiable buyers repay (see disclosure.py).
    credit_performance: bool = False
    joins: tuple = ()  # (table, on clause) outer-joined to the referrals to evaluate `num`


def _rate(name, label, source, direction, definition, num, den=None, **kw) -> KPI:
    """A rate: rows of `source` where `num` holds / rows where `den` holds (None: every row)."""
    return KPI(name, label, "rate", source, direction, definition, num=num, den=den, **kw)


KPIS: list[KPI] = [
    # quality --------------------------------------------------------------------------------
    _rate("approval_rate", _l("Approval rate"), "decided", "higher",
          _l("Approved (or later) / decided (approved + declined), by decision date."),
          num=R.status != "declined", worst=0.30, best=0.90, weight=15),
    _rate("pull_through", _l("Pull-through"), "closed", "higher",
          _l("Disbursed / closed (disbursed, declined, withdrawn, expired, rejected as "
             "duplicate), by closing date."),
          num=R.status == "disbursed", worst=0.20, best=0.80, weight=15),
    _rate("document_first_pass", _l("Documents complete first time"), "decided", "higher",
          _l("Decided without ever being sent back for documents / decided, by decision date."),
          num=not_(R.ever_documents_requested), worst=0.30, best=0.90, weight=10),
    _rate("conflict_rate", _l("Conflict rate"), "submitted", "lower",
          _l("Referrals that went to an attribution conflict / referrals submitted."),
          num=EVER_CONFLICT, worst=0.20, best=0.0, weight=5),
    _rate("class1_share", _l("Class-1 buyer share"), "submitted", "higher",
          _l("Buyers of customer class 1 (by employer industry) / referrals submitted."),
          num=R.customer_class == 1, worst=0.10, best=0.70, weight=10),
    # Beside it, the group the study would avoid (25% of borrowers, NPL 6.8%): shown on every
    # card; not scored by default (class-1 share already rewards the mix), an admin may weight it.
    _rate("class3_share", _l("Class-3 buyer share"), "submitted", "lower",
          _l("Buyers of customer class 3 (employer outside the class-1 and class-2 industries) / "
             "referrals submitted."),
          num=R.customer_class == 3, worst=0.40, best=0.05, weight=0),
    _rate("delinquency_rate", _l("30+ days past due"), "loans", "lower",
          _l("Referred loans whose latest statement in the period is 30 or more days past due "
             "/ referred loans with a statement in the period (closed loans left out)."),
          num=LP.days_past_due >= 30, den=LP.status != "closed", worst=0.15, best=0.0,
          weight=10, credit_performance=True),
    _rate("npl_rate", _l("NPL rate"), "loans", "lower",
          _l("Referred loans whose latest statement in the period is non-performing / referred "
             "loans with a statement in the period (closed loans left out)."),
          num=LP.status == "npl", den=LP.status != "closed", worst=0.06, best=0.0, weight=10,
          credit_performance=True),
    _rate("early_payment_default", _l("Early payment default"), "epd", "lower",
          _l("Loans 30+ days past due within their first 90 days / loans observed in their "
             "first 90 days, counted in the period their 90 days end."),
          num=LP.days_past_due >= 30, worst=0.05, best=0.0, weight=5, credit_performance=True),
    # speed ----------------------------------------------------------------------------------
    KPI("partner_response_hours", _l("Partner response (median hours)"), "hours", "resolved",
        "lower", _l("Median hours a referral spent waiting on the partner (documents "
                    "requested), over referrals asked for documents, by decision or closing "
                    "date."),
        measure=R.partner_seconds, quantile=0.5, worst=240.0, best=24.0, weight=10),
    KPI("bank_turnaround_hours", _l("Bank turnaround to decision (median hours)"), "hours",
        "decided", "lower",
        _l("Median hours on the bank's clock from submission to decision (time waiting on the "
           "partner not counted), by decision date."),
        measure=BANK_SECONDS_TO_DECISION, quantile=0.5, shrink=False, worst=240.0, best=24.0),
    KPI("bank_turnaround_p90_hours", _l("Bank turnaround to decision (p90 hours)"), "hours",
        "decided", "lower", _l("90th percentile of the same."),
        measure=BANK_SECONDS_TO_DECISION, quantile=0.9, shrink=False, worst=480.0, best=48.0),
    KPI("disbursement_hours", _l("Decision to disbursement (median hours)"), "hours",
        "disbursed", "lower",
        _l("Median hours from credit decision to disbursement, by disbursement date."),
        measure=DECISION_TO_DISBURSEMENT, quantile=0.5, shrink=False, worst=480.0, best=48.0),
    KPI("disbursement_p90_hours", _l("Decision to disbursement (p90 hours)"), "hours",
        "disbursed", "lower", _l("90th percentile of the same."),
        measure=DECISION_TO_DISBURSEMENT, quantile=0.9, shrink=False, worst=960.0, best=96.0),
    _rate("sla_compliance", _l("Decisions within SLA"), "decided", "higher",
          _l("Decisions reached within the SLA's bank hours / decisions, by decision date."),
          num=WITHIN_SLA, joins=(SLA_JOIN,), worst=0.50, best=1.0),
    # volume ---------------------------------------------------------------------------------
    KPI("referrals", _l("Referrals submitted"), "count", "submitted", "higher",
        _l("Referrals submitted in the period."), measure=literal(1), shrink=False),
    KPI("disbursed_count", _l("Loans disbursed"), "count", "disbursed", "higher",
        _l("Loans disbursed in the period."), measure=literal(1), shrink=False),
    KPI("disbursed_amount", _l("Amount disbursed"), "amount", "disbursed", "higher",
        _l("Sum of the amounts disbursed in the period (the amount requested where no "
           "disbursement amount was recorded); scored against the partner at the portfolio's "
           "90th percentile."), measure=lent_amount(R), shrink=False, weight=10),
]
KPI_BY_NAME = {k.name: k for k in KPIS}
DEFAULT_WEIGHTS = {k.name: k.weight for k in KPIS}
# Card keys every API consumer may rely on (docs/contract.md).
CONTRACT_KPIS = ("approval_rate", "pull_through", "document_first_pass", "class1_share",
                 "delinquency_rate", "npl_rate", "partner_response_hours",
                 "bank_turnaround_hours")
