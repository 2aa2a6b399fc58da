"""The portfolio by customer class (the source study's table), from a generated history imported
through the CLI: the API, the page and its CSV give exactly the shares and rates the test
computes itself; every cell opens the loans it counts."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import timedelta

import pytest

from portal.bank_time import bank_today
from tests import factories
from tests.integration_helpers import auth, make_key

# class -> industries used for it (class 2 includes real estate, which the study singles out)
INDUSTRY_OF = {1: ["government", "education_science_culture_health", "finance_insurance"],
               2: ["commerce_trade", "real_estate_construction"], 3: ["other"]}
# class -> (loans, non-performing, 30-89 days past due, closed, without a statement, amount)
PLAN = {1: (25, 1, 2, 1, 1, 500_000), 2: (20, 2, 1, 0, 0, 450_000),
        3: (15, 3, 2, 0, 1, 300_000)}


def _stamp(day) -> str:
    return f"{day.isoformat()}T10:00:00+08:00"


@pytest.fixture
def history(app, world, tmp_path):
    """Imports ~60 loans (and a few declined referrals that must not count) with two monthly
    statements each; returns what the test expects, computed here from the plan."""
    today = bank_today()
    referral_rows = ["org_code,external_ref,product,buyer_name,national_id,mobile,industry,"
                     "monthly_income,amount,term_months,submitted_at,status_history"]
    loan_rows = ["org_code,external_ref,as_of,outstanding,days_past_due,status"]
    truth = {c: Counter() for c in PLAN}
    orgs = ["PARTNERA", "PARTNERB"]
    n = 0
    latest_disbursed = None
    earliest_disbursed = None
    for cls, (loans, npl, late, closed, silent, amount) in PLAN.items():
        for i in range(loans):
            n += 1
            org = orgs[n % 2]
            industry = INDUSTRY_OF[cls][i % len(INDUSTRY_OF[cls])]
            submitted = today - timedelta(days=110 - n % 20)
            disbursed = submitted + timedelta(days=4)
            latest_disbursed = max(latest_disbursed or disbursed, disbursed)
            earliest_disbursed = min(earliest_disbursed or disbursed, disbursed)
            loan_amount = amount + 10_000 * (i % 3)
            history_text = "|".join([f"under_review@{_stamp(submitted + timedelta(days=1))}",
                                     f"approved@{_stamp(submitted + timedelta(days=2))}",
                                     f"contract_signed@{_stamp(submitted + timedelta(days=3))}",
                                     f"disbursed@{_stamp(disbursed)}"])
            referral_rows.append(",".join([
                org, f"P-{n}", "housing_mortgage", "王芳", factories.national_id(n),
                factories.mobile(n), industry, "20000", str(loan_amount), "240",
                _stamp(submitted), history_text]))
            t = truth[cls]
            t["borrowers"] += 1
            t["disbursed"] += loan_amount
            if i < silent:
                t["balance"] += loan_amount  # owes what was lent until its first statement
                t["first_balance"] += loan_amount
                continue  # disbursed, no statement yet: a borrower without performance
            # statement 1: all current; statement 2: the loan's final standing
            first, second = disbursed + timedelta(days=30), disbursed + timedelta(days=60)
            loan_rows.append(f"{org},P-{n},{first.isoformat()},{loan_amount * 0.99:.2f},0,"
                             "current")
            k = i - silent
            if k < npl:
                status, dpd, outstanding = "npl", 120, loan_amount * 0.98
            elif k < npl + late:
                status, dpd, outstanding = "delinquent", 45, loan_amount * 0.98
            elif k < npl + late + closed:
                status, dpd, outstanding = "closed", 0, 0
            else:
                status, dpd, outstanding = "current", 0, loan_amount * 0.98
            loan_rows.append(f"{org},P-{n},{second.isoformat()},{outstanding:.2f},{dpd},{status}")
            t["first_balance"] += round(loan_amount * 0.99, 2)
            t["first_performing"] += 1
            t["balance"] += round(outstanding, 2)
            if status != "closed":
                t["performing"] += 1
            t["npl"] += status == "npl"
            t["delinquent"] += status in ("npl", "delinquent")
            if industry == "real_estate_construction":
                truth.setdefault("re", Counter())
                truth["re"]["performing"] += status != "closed"
                truth["re"]["npl"] += status == "npl"
    # Declined and still-open referrals are not loans: they must not count anywhere.
    for j in range(4):
        n += 1
        submitted = today - timedelta(days=40)
        referral_rows.append(",".join([
            "PARTNERA", f"P-{n}", "housing_mortgage", "李强", factories.national_id(n),
            factories.mobile(n), "other", "20000", "400000", "240", _stamp(submitted),
            f"under_review@{_stamp(submitted + timedelta(days=1))}"
            + (f"|declined@{_stamp(submitted + timedelta(days=2))}" if j % 2 else "")]))
    referrals_csv = tmp_path / "history.csv"
    referrals_csv.write_text("\n".join(referral_rows) + "\n", encoding="utf-8")
    loans_csv = tmp_path / "loans.csv"
    loans_csv.write_text("\n".join(loan_rows) + "\n", encoding="utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["referrals", "import", str(referrals_csv)])
    assert result.exit_code == 0 and f"{n} created" in result.output, result.output
    result = runner.invoke(args=["loans", "import", str(loans_csv)])
    assert result.exit_code == 0 and " 0 rejected" in result.output, result.output
    # Between the two statements of every loan: only the first (all current) counts then.
    mid = latest_disbursed + timedelta(days=35)
    assert mid < earliest_disbursed + timedelta(days=60)
    return truth, mid


def _expected(truth):
    total = {k: sum(truth[c][k] for c in PLAN) for k in ("borrowers", "balance", "performing",
                                                          "npl", "delinquent")}
    out = {}
    for c in PLAN:
        t = truth[c]
        out[str(c)] = {
            "borrowers": t["borrowers"], "borrower_share": t["borrowers"] / total["borrowers"],
            "balance_share": t["balance"] / total["balance"],
            "npl_rate": t["npl"] / t["performing"],
            "delinquency_rate": t["delinquent"] / t["performing"],
            "loans_with_performance": t["performing"], "npl_loans": t["npl"]}
    return out, total


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def test_the_api_page_and_csv_give_the_truth_by_customer_class(app, world, history, as_user):
    truth, mid = history
    expected, total = _expected(truth)
    key = make_key(world.manager, "portfolio")
    client = app.test_client()
    body = client.get("/api/v1/portfolio?group_by=customer_class", headers=auth(key)).get_json()
    assert body["group_by"] == "customer_class" and body["as_of"] == bank_today().isoformat()
    groups = {g["key"]: g for g in body["groups"]}
    assert list(groups) == ["1", "2", "3"]
    for cls, exp in expected.items():
        for name, value in exp.items():
            assert groups[cls][name] == pytest.approx(value, abs=1e-12), (cls, name)
        low, high = groups[cls]["npl_interval"]
        assert low <= exp["npl_rate"] <= high
    assert sum(g["borrower_share"] for g in body["groups"]) == pytest.approx(1.0)
    assert sum(g["balance_share"] for g in body["groups"]) == pytest.approx(1.0)
    assert body["total"]["borrowers"] == total["borrowers"]
    assert body["total"]["npl_rate"] == pytest.approx(total["npl"] / total["performing"])
    assert body["total"]["balance"] == pytest.approx(total["balance"], abs=0.01)

    # The same, on the page: every share and rate to its last digit shown.
    browser = as_user(world.manager)
    page = browser.get("/bank/portfolio")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    cells = _page_cells(html)
    for cls, exp in expected.items():
        row = cells[cls]
        assert row["borrowers"] == str(exp["borrowers"])
        assert row["borrower_share"] == _pct(exp["borrower_share"])
        assert row["balance_share"] == _pct(exp["balance_share"])
        assert row["npl_rate"] == (f"{_pct(exp['npl_rate'])} ({exp['npl_loans']} / "
                                   f"{exp['loans_with_performance']})")
        assert row["delinquency_rate"].startswith(_pct(exp["delinquency_rate"]))
    assert 'data-chart="chart-portfolio-mix"' in html
    # ... and the CSV is the page's table, cell for cell.
    export = browser.get("/bank/portfolio.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
    header, data = rows[0], rows[1:]
    assert header[0] == "key" and header[1] == "Customer class"
    for line in data:
        page_row = cells[line[0]]
        assert line[1:] == [page_row[c] for c in page_row], line

    # Measured as of a date between the two statements: only the first (all current) counts.
    earlier = client.get(f"/api/v1/portfolio?to={mid.isoformat()}", headers=auth(key)).get_json()
    for g in earlier["groups"]:
        exp = truth[int(g["key"])]
        assert g["npl_rate"] == 0 and g["loans_with_performance"] == exp["first_performing"]
    assert earlier["total"]["balance"] == pytest.approx(
        sum(truth[c]["first_balance"] for c in PLAN), abs=0.01)


def test_industry_grouping_shows_real_estate_and_filters_narrow(app, world, history):
    truth, _mid = history
    key = make_key(world.officer, "portfolio")
    client = app.test_client()
    body = client.get("/api/v1/portfolio?group_by=industry", headers=auth(key)).get_json()
    re_group = next(g for g in body["groups"] if g["key"] == "real_estate_construction")
    assert re_group["npl_rate"] == pytest.approx(truth["re"]["npl"] / truth["re"]["performing"])
    assert sum(g["borrower_share"] for g in body["groups"]) == pytest.approx(1.0)
    only_a = client.get("/api/v1/portfolio?org_code=partnera&group_by=org",
                        headers=auth(key)).get_json()
    assert [g["key"] for g in only_a["groups"]] == ["PARTNERA"]
    assert only_a["groups"][0]["borrower_share"] == 1.0
    months = client.get("/api/v1/portfolio?group_by=month", headers=auth(key)).get_json()
    assert sum(g["borrowers"] for g in months["groups"]) == body["total"]["borrowers"]
    assert all(re.fullmatch(r"\d{4}-\d{2}", g["key"]) for g in months["groups"])
    bad = client.get("/api/v1/portfolio?group_by=colour", headers=auth(key))
    assert bad.status_code == 422 and "group_by" in bad.get_json()["error"]["fields"]
    backwards = client.get("/api/v1/portfolio?from=2026-05-01&to=2026-04-01", headers=auth(key))
    assert backwards.status_code == 422


def test_every_cell_opens_the_loans_it_counts(world, history, as_user):
    truth, _mid = history
    client = as_user(world.manager)
    html = client.get("/bank/portfolio").get_data(as_text=True)
    row3 = re.search(r'data-key="3"(.*?)</tr>', html, re.S).group(1)
    url = re.search(r'data-col="npl_rate"><a[^>]*href="([^"]+)"', row3).group(1)
    url = url.replace("&amp;", "&")
    assert "key=3" in url and "measure=npl" in url
    listed = client.get(url).get_data(as_text=True)
    assert listed.count('data-testid="loan-row"') == truth[3]["npl"]
    everyone = client.get("/bank/portfolio/loans?group_by=customer_class&key=1&per_page=100")
    assert everyone.get_data(as_text=True).count('data-testid="loan-row"') == \
        truth[1]["borrowers"]


@pytest.mark.parametrize("role", ["partner_a", "agent_a"])
def test_partners_cannot_read_the_portfolio(app, world, role, history):
    key = make_key(getattr(world, role), "nope")
    response = app.test_client().get("/api/v1/portfolio", headers=auth(key))
    assert response.status_code == 403


def _page_cells(html: str) -> dict[str, dict[str, str]]:
    """{row key: {column: the cell's text}} of the portfolio table."""
    table = html.split('data-testid="portfolio"', 1)[1].split("</table>", 1)[0]
    out = {}
    for key, body in re.findall(r'<tr data-testid="portfolio-(?:row|total)" data-key="([^"]+)"'
                                r'[^>]*>(.*?)</tr>', table, re.S):
        out[key] = {col: re.sub(r"<[^>]+>", "", text).strip().replace("&amp;", "&")
                    for col, text in re.findall(r'data-col="(\w+)">(.*?)</t[dh]>', body, re.S)}
    return out
