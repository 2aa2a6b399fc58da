"""API v1: the portfolio by customer class, industry, partner type, partner, product or month
(bank roles). The same service and the same filters as the bank's portfolio page and its CSV."""

from __future__ import annotations

from flask import request
from flask_babel import get_locale
from pydantic import BaseModel, Field

from portal.i18n import lazy_gettext as _l
from portal.services import portfolio
from portal.services.errors import Forbidden

from .common import bp, json_response, rate_limited, user
from .openapi import operation


class PortfolioGroupOut(BaseModel):
    key: str = Field(description="The group's code: 1-3, an industry or partner type code, a "
                                 "partner's code, a product code or YYYY-MM; `total` for the "
                                 "total.")
    label: str
    borrowers: int = Field(description="Disbursed loans (one borrower account each).")
    borrower_share: float | None = Field(description="Of the filtered total (fraction 0-1).")
    balance: float = Field(description="Outstanding on each loan's latest statement up to `to` "
                                       "(the amount disbursed while it has none).")
    balance_share: float | None
    disbursed_amount: float
    loans_with_performance: int = Field(description="Loans whose latest statement up to `to` is "
                                                    "not closed: the rates' denominator.")
    delinquent_loans: int
    npl_loans: int
    delinquency_rate: float | None = Field(description="30+ days past due (fraction 0-1).")
    npl_rate: float | None
    npl_interval: list[float] | None = Field(description="[low, high], the rate's interval "
                                                         "(SCORING_INTERVAL, Jeffreys).")
    delinquency_interval: list[float] | None


class PortfolioOut(BaseModel):
    as_of: str = Field(description="The date the loans are measured on (`to`, default today).")
    group_by: str
    filters: dict[str, str]
    groups: list[PortfolioGroupOut]
    total: PortfolioGroupOut


class PortfolioArgs(portfolio.PortfolioQuery):
    """The portfolio's filters (the drill-down's `key` and `measure` are the page's own)."""


@bp.route("/portfolio", methods=["GET"])
@operation("getPortfolio", "The loan portfolio grouped by customer class, industry, partner "
                           "type, partner, product or month of disbursement (bank roles)",
           tag="portfolio", query=PortfolioArgs,
           responses={200: (PortfolioOut, "The groups and their total.")},
           errors=("403", "422"))
@rate_limited
def get_portfolio():
    caller = user()
    if not caller.is_bank:
        raise Forbidden(_l("Only bank users can read the portfolio."))
    query = portfolio.parse(request.args.to_dict())
    result = portfolio.portfolio(query, caller, locale=str(get_locale() or "zh_CN"))
    return json_response(PortfolioOut.model_validate(result.json()).model_dump(mode="json"))
