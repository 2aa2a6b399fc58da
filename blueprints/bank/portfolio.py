"""The portfolio page (bank roles): the study's table by customer class first, the other
groupings a tab away, every cell opening the loans behind it, and the table as CSV."""

from __future__ import annotations

from flask import Response, render_template, request
from flask_babel import get_locale
from flask_login import current_user

from blueprints import paginate
from portal.security import bank_required
from portal.services import branches, partners, portfolio, portfolio_views, queue, scoring, sites
from portal.services.errors import ValidationFailed

from .routes import bp


def _query() -> tuple[portfolio.PortfolioQuery, dict]:
    """The filters from the query string; invalid ones are shown and the defaults used."""
    try:
        return portfolio.parse(request.args.to_dict()), {}
    except ValidationFailed as err:
        return portfolio.PortfolioQuery(), {k: str(v) for k, v in err.fields.items()}


def _result(query):
    return portfolio.portfolio(query, current_user, locale=str(get_locale() or "zh_CN"))


def _site_choices(query) -> list[tuple[int, str]]:
    """The chosen partner's sites, to read its portfolio site by site."""
    org = partners.by_reference(query.org_code, current_user) if query.org_code else None
    return [(s.id, f"{s.name} ({s.code})") for s in sites.of_org(org.id)] if org else []


@bp.route("/portfolio")
@bank_required
def portfolio_page():
    query, errors = _query()
    result = _result(query)
    return render_template(
        "bank/portfolio.html", q=query, errors=errors, result=result,
        rows=portfolio_views.table(result), columns=portfolio_views.COLUMNS,
        headings=portfolio_views.headings(result, portfolio.GROUP_LABELS[query.group_by]),
        chart=portfolio_views.chart(result), groups=portfolio.GROUP_LABELS,
        products=queue.products(), orgs=partners.partner_orgs(current_user),
        branch_choices=branches.choices(current_user), site_choices=_site_choices(query),
        level=float(scoring.setting("SCORING_INTERVAL"))), 422 if errors else 200


@bp.route("/portfolio.csv")
@bank_required
def portfolio_csv():
    query, _errors = _query()
    result = _result(query)
    text = portfolio_views.csv_text(result, portfolio.GROUP_LABELS[query.group_by])
    response = Response("\ufeff" + text, mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="portfolio-{query.group_by}-{result.as_of.isoformat()}.csv"')
    return response


@bp.route("/portfolio/loans")
@bank_required
def portfolio_loans():
    query, errors = _query()
    page = paginate(portfolio.loans(query, current_user))
    label = None
    if query.key is not None:
        result = _result(query)
        label = next((g.label for g in result.groups if g.key == query.key), query.key)
    return render_template("bank/portfolio_loans.html", q=query, errors=errors, page=page,
                           label=label, groups=portfolio.GROUP_LABELS,
                           latest=portfolio.statements(query, [r.id for r in page.items]),
                           as_of=portfolio.as_of(query))
