"""Partners' quoting tools: the payment calculator, the product sheets, the intake form offering
only covered products, amounts typed with 万, and money written for the page's language."""

from __future__ import annotations

from decimal import Decimal
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Product, ProductRate, Referral
from portal.extensions import db
from portal.formatting import money
from portal.services import Ctx, product_tools
from portal.services.errors import ValidationFailed
from portal.services.referral_intake import parse_amount
from tests import factories
from tests.conftest import login

# --- the calculator's arithmetic ----------------------------------------------------------------


def _float_level_payment(amount, annual_percent, months):
    """The textbook annuity formula in floating point, as a check written apart from the service."""
    r = annual_percent / 100 / 12
    return amount * r * (1 + r) ** months / ((1 + r) ** months - 1)


@pytest.mark.parametrize("amount, rate, months, expected", [
    # The published reference: 1,000,000 at 4.9 % over 30 years is 5,307.27 a month.
    (Decimal("1000000"), Decimal("4.9"), 360, Decimal("5307.27")),
    (Decimal("100000"), Decimal("6"), 12, Decimal("8606.64")),
    (Decimal("200000"), Decimal("3.1"), 240, Decimal("1119.23")),
])
def test_equal_instalments_match_the_annuity_formula(amount, rate, months, expected):
    plan = product_tools.schedule(amount, rate, months, product_tools.EQUAL_INSTALMENT)
    independent = _float_level_payment(float(amount), float(rate), months)
    assert abs(independent - float(expected)) < 0.005
    assert plan.first_payment == expected
    assert all(row.payment == expected for row in plan.rows[:-1])
    # The last month settles what 359 roundings of the payment left over (a few yuan on a
    # thirty-year loan, as on the bank's own schedules).
    assert abs(plan.last_payment - expected) < Decimal("5.00")
    assert sum(r.principal for r in plan.rows) == amount
    assert plan.rows[-1].balance == 0
    assert plan.total_repayment == amount + plan.total_interest
    # Total interest is about n × payment − amount (the schedule rounds each month's interest).
    assert abs(plan.total_interest - (expected * months - amount)) < Decimal("5.00")


def test_equal_principal_reference_case():
    amount, rate, months = Decimal("1000000"), Decimal("4.9"), 360
    plan = product_tools.schedule(amount, rate, months, product_tools.EQUAL_PRINCIPAL)
    # Worked by hand: principal 1,000,000 / 360 = 2,777.78; first month's interest
    # 1,000,000 × 4.9 % / 12 = 4,083.33; the last month repays what 359 × 2,777.78 left,
    # 2,776.98, with 11.34 of interest on it.
    assert plan.first_payment == Decimal("6861.11")
    assert plan.rows[0].interest == Decimal("4083.33")
    assert plan.rows[1].payment == Decimal("6849.77")  # 2,777.78 + 997,222.22 × r = 4,071.99
    assert plan.last_payment == Decimal("2788.32")
    # Σ interest = P·r·(n+1)/2 = 737,041.67 to within the fen rounding of 360 months.
    closed_form = 1_000_000 * 0.049 / 12 * 361 / 2
    assert abs(float(plan.total_interest) - closed_form) < 1.0
    assert sum(r.principal for r in plan.rows) == amount
    payments = [r.payment for r in plan.rows]
    assert payments == sorted(payments, reverse=True)


def test_every_figure_is_rounded_to_the_fen_the_bankers_way():
    # 1,000 at 1.5 %: the first month's interest is 1.25 exactly; banker's rounding keeps 1.25,
    # and a half fen goes to the even fen (0.125 → 0.12), not up.
    assert product_tools.fen(Decimal("0.125")) == Decimal("0.12")
    assert product_tools.fen(Decimal("0.135")) == Decimal("0.14")
    plan = product_tools.schedule(Decimal("1000"), Decimal("1.5"), 3,
                                  product_tools.EQUAL_PRINCIPAL)
    assert [r.principal for r in plan.rows] == [Decimal("333.33"), Decimal("333.33"),
                                                Decimal("333.34")]
    assert [r.interest for r in plan.rows] == [Decimal("1.25"), Decimal("0.83"), Decimal("0.42")]
    for row in plan.rows:
        assert row.payment == row.payment.quantize(Decimal("0.01"))


def test_a_zero_rate_repays_the_amount_in_equal_parts():
    plan = product_tools.schedule(Decimal("10000"), Decimal("0"), 3,
                                  product_tools.EQUAL_INSTALMENT)
    assert [r.payment for r in plan.rows] == [Decimal("3333.33"), Decimal("3333.33"),
                                              Decimal("3333.34")]
    assert plan.total_interest == 0 and plan.total_repayment == Decimal("10000")


def test_the_rate_comes_from_the_band_of_the_term(app):
    mortgage = db.session.get(Product, "housing_mortgage")
    bands = [(b.min_term_months, b.max_term_months) for b in mortgage.rates]
    assert bands[0][0] == 1 and bands[-1][1] == mortgage.max_term_months
    short, long_ = mortgage.rates[0], mortgage.rates[-1]
    assert product_tools.rate_for(mortgage, short.max_term_months) == short.annual_rate
    assert product_tools.rate_for(mortgage, long_.min_term_months) == long_.annual_rate
    assert product_tools.rate_for(mortgage, mortgage.max_term_months + 1) is None


@pytest.mark.parametrize("data, field", [
    ({"amount": "lots", "months": "240", "method": "equal_instalment"}, "amount"),
    ({"amount": "5万", "months": "240", "method": "equal_instalment"}, "amount"),  # below 100,000
    ({"amount": "120万", "months": "361", "method": "equal_instalment"}, "months"),
    ({"amount": "120万", "months": "0", "method": "equal_instalment"}, "months"),
    ({"amount": "120万", "months": "240", "method": "interest_only"}, "method"),
])
def test_the_calculator_refuses_what_it_cannot_quote(world, data, field):
    with pytest.raises(ValidationFailed) as refused:
        product_tools.quote(world.org_a, "housing_mortgage", data)
    assert field in refused.value.fields


def test_the_calculator_quotes_only_covered_products(app):
    org = factories.OrgFactory(agreement=["auto_loan"])
    with pytest.raises(ValidationFailed) as refused:
        product_tools.quote(org, "housing_mortgage",
                            {"amount": "100万", "months": "240", "method": "equal_instalment"})
    assert "product" in refused.value.fields


# --- the calculator page ------------------------------------------------------------------------

def test_the_calculator_page_shows_the_quote_and_the_schedule(world, as_user):
    client = as_user(world.agent_a)
    page = client.get("/partner/calculator", query_string={
        "product": "housing_mortgage", "amount": "100万", "months": "360",
        "method": "equal_instalment"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    mortgage = db.session.get(Product, "housing_mortgage")
    rate = product_tools.rate_for(mortgage, 360)
    expected = product_tools.level_payment(Decimal(1_000_000), rate / 1200, 360)
    assert f"¥{expected:,.2f}" in _testid(html, "monthly")
    rows = html.count("data-month=")
    assert rows == 13 and 'data-month="360"' in html  # the first twelve and the last


def test_the_calculator_page_keeps_what_was_typed_on_refusal(world, as_user):
    client = as_user(world.agent_a)
    page = client.get("/partner/calculator", query_string={
        "product": "housing_mortgage", "amount": "twelve", "months": "240",
        "method": "equal_principal"})
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert 'value="twelve"' in html and 'value="240"' in html
    assert 'data-error-for="amount"' in html and "120万" in html
    assert 'value="equal_principal" checked' in html


def test_the_calculator_in_chinese(world, as_user):
    client = as_user(world.agent_a)
    page = client.get("/partner/calculator", headers={"Accept-Language": "zh-CN"},
                      query_string={"product": "auto_loan", "amount": "20万", "months": "36",
                                    "method": "equal_principal"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "等额本金" in html and "20万元" in html
    assert "¥5,555.56" in html  # each month's principal, 200,000 / 36, in full


# --- product sheets -----------------------------------------------------------------------------

def test_the_product_sheets_show_only_what_the_agreement_covers(app, client):
    org = factories.OrgFactory(agreement=["auto_loan", "consumer_loan"])
    agent = factories.UserFactory(org=org, role="partner_agent")
    db.session.commit()
    login(client, agent)
    html = client.get("/partner/products").get_data(as_text=True)
    shown = {p for p in ("auto_loan", "consumer_loan", "housing_mortgage", "study_abroad_loan")
             if f'data-product="{p}"' in html}
    assert shown == {"auto_loan", "consumer_loan"}
    auto = db.session.get(Product, "auto_loan")
    sheet = html[html.index('data-product="auto_loan"'):html.index('data-product="consumer_loan"')]
    # Round limits are written short: ¥20,000 in English, 2万元 in Chinese.
    assert "¥20,000" in sheet and "¥2,000,000" in sheet and "60 months" in sheet
    assert "Vehicle invoice" in sheet and "Down-payment receipt" in sheet
    for band in auto.rates:
        assert f"{band.min_term_months}–{band.max_term_months} months" in sheet
        assert f"{band.annual_rate:.2f}%" in sheet


def test_without_an_agreement_the_tools_explain_and_link_to_agreements(app, client):
    org = factories.OrgFactory(agreement=False)
    agent = factories.UserFactory(org=org, role="partner_agent")
    db.session.commit()
    login(client, agent)
    for url in ("/partner/products", "/partner/calculator", "/partner/referrals/new"):
        html = client.get(url).get_data(as_text=True)
        assert 'data-testid="no-covered-products"' in html, url
        assert 'href="/partner/agreements"' in html, url
        assert 'name="buyer_name"' not in html, url


# --- the intake form ----------------------------------------------------------------------------

class _Controls(HTMLParser):
    """The form's controls by name, with their attributes, and the labels' text by `for`."""

    def __init__(self):
        super().__init__()
        self.controls, self.labels, self.options, self._label = {}, {}, [], None
        self._select = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("input", "select", "textarea") and attrs.get("name"):
            self.controls[attrs["name"]] = attrs
            self._select = attrs["name"] if tag == "select" else None
        if tag == "option" and self._select == "product":
            self.options.append(attrs.get("value"))
        if tag == "label":
            self._label = attrs.get("for")
            self.labels[self._label] = ""

    def handle_endtag(self, tag):
        if tag == "label":
            self._label = None

    def handle_data(self, data):
        if self._label:
            self.labels[self._label] += data


def _form(html: str) -> _Controls:
    parser = _Controls()
    parser.feed(html)
    return parser


ALWAYS_REQUIRED = ("product", "buyer_name", "national_id", "mobile", "employer", "industry",
                   "monthly_income", "amount", "term_months")
ASSET_FIELDS = ("asset_description", "asset_price", "down_payment")


def test_the_intake_offers_only_covered_products(app, client):
    org = factories.OrgFactory(agreement=["auto_loan"])
    agent = factories.UserFactory(org=org, role="partner_agent")
    db.session.commit()
    login(client, agent)
    form = _form(client.get("/partner/referrals/new").get_data(as_text=True))
    assert form.options == ["", "auto_loan"]


def test_every_required_field_has_its_asterisk_and_required(world, as_user):
    html = as_user(world.agent_a).get("/partner/referrals/new").get_data(as_text=True)
    form = _form(html)
    for name in ALWAYS_REQUIRED:
        control = form.controls[name]
        assert "required" in control and control.get("aria-required") == "true", name
        assert form.labels[name].rstrip().endswith("*"), name
    consent = form.controls["consent"]  # a checkbox the buyer's agreement must tick
    assert "required" in consent and consent.get("aria-required") == "true"
    assert "*" in form.labels["consent"]
    for name in ASSET_FIELDS:  # required for property and vehicle loans: marked, and said so
        assert form.labels[name].rstrip().endswith("*"), name
    assert html.count("Required for property and vehicle loans.") == 3
    assert "external_ref" in form.controls and not form.labels["external_ref"].endswith("*")


def test_the_asset_fields_are_required_for_an_auto_loan(world, as_user):
    client = as_user(world.agent_a)
    for url in ("/partner/referrals/new?product=auto_loan",):
        form = _form(client.get(url).get_data(as_text=True))
        for name in ASSET_FIELDS:
            assert "required" in form.controls[name], name
            assert form.controls[name].get("aria-required") == "true", name
    form = _form(client.get("/partner/referrals/new?product=consumer_loan").get_data(as_text=True))
    assert all("required" not in form.controls[name] for name in ASSET_FIELDS)
    # Refused for a missing vehicle price: shown again, the fields now marked required.
    response = client.post("/partner/referrals/new", data=factories.intake(
        product="auto_loan", amount="15万", term_months="36", asset_price="", down_payment=""))
    assert response.status_code == 422
    form = _form(response.get_data(as_text=True))
    assert form.controls["asset_price"].get("aria-required") == "true"
    assert 'data-error-for="asset_price"' in response.get_data(as_text=True)


def test_an_uncovered_product_posted_directly_is_refused_and_nothing_typed_is_lost(app, client):
    org = factories.OrgFactory(agreement=["auto_loan"])
    agent = factories.UserFactory(org=org, role="partner_agent")
    db.session.commit()
    login(client, agent)
    data = factories.intake(product="housing_mortgage", buyer_name="李娜", amount="70万",
                            external_ref="FILE-77")
    response = client.post("/partner/referrals/new", data=data)
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "does not cover" in html
    form = _form(html)
    for name in ("buyer_name", "national_id", "mobile", "employer", "amount", "external_ref",
                 "asset_description", "asset_price", "down_payment", "monthly_income"):
        assert form.controls[name].get("value") == data[name], name
    assert db.session.scalar(select(func.count()).select_from(Referral)) == 0


@pytest.mark.parametrize("typed, amount", [
    ("120万", "1200000.00"), ("120 万", "1200000.00"), ("1,200,000", "1200000.00"),
    ("1200000.00", "1200000.00"), ("¥1,200,000", "1200000.00"), ("1.5万元", "15000.00"),
])
def test_amounts_are_read_as_people_type_them(world, as_user, typed, amount):
    client = as_user(world.agent_a)
    response = client.post("/partner/referrals/new", data=factories.intake(
        amount=typed if Decimal(amount) >= 100_000 else "700000",
        monthly_income=typed if Decimal(amount) < 100_000 else "25000",
        asset_price="2000000", down_payment="500000"))
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    referral = db.session.scalar(select(Referral))
    got = referral.amount if Decimal(amount) >= 100_000 else referral.monthly_income
    assert got == Decimal(amount)


@pytest.mark.parametrize("typed, value", [
    ("120万", Decimal(1_200_000)), ("120 万", Decimal(1_200_000)),
    ("1,200,000", Decimal(1_200_000)), ("1200000.00", Decimal(1_200_000)),
    ("¥1,200,000", Decimal(1_200_000)), ("1.5万元", Decimal(15_000)), ("800000", Decimal(800_000)),
])
def test_wan_parsing(typed, value):
    assert parse_amount(typed) == value


@pytest.mark.parametrize("typed", ["abc", "万", "12万万", "1,2a", "nan", "inf", "1.2.3", "¥"])
def test_garbage_is_not_an_amount_and_says_how_to_type_one(world, as_user, typed):
    client = as_user(world.agent_a)
    response = client.post("/partner/referrals/new", data=factories.intake(amount=typed))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Enter an amount in yuan, such as 1,200,000 or 120万." in html
    assert _form(html).controls["amount"].get("value") == typed


def test_the_api_still_takes_numbers_only(world):
    from pydantic import TypeAdapter, ValidationError

    from blueprints.api.schemas import API_TYPES
    with pytest.raises(ValidationError):
        TypeAdapter(API_TYPES["money"]).validate_python("120万")


# --- money on the page --------------------------------------------------------------------------

@pytest.mark.parametrize("locale, value, short, expected", [
    ("en", Decimal("1200000"), False, "¥1,200,000.00"),
    ("en", Decimal("1200000"), True, "¥1,200,000"),
    ("en", Decimal("1234.5"), True, "¥1,234.50"),
    ("en", Decimal("-500"), False, "-¥500.00"),
    ("zh_CN", Decimal("1200000"), False, "¥1,200,000.00"),
    ("zh_CN", Decimal("1200000"), True, "120万元"),
    ("zh_CN", Decimal("1234500"), True, "123.45万元"),
    ("zh_CN", Decimal("1234567"), True, "¥1,234,567"),  # not exact in 万 to two places: in full
    ("zh_CN", Decimal("9000"), True, "¥9,000"),
    ("zh_CN", None, False, "—"),
    ("en", 800000, False, "¥800,000.00"),
])
def test_the_money_filter(app, locale, value, short, expected):
    from flask_babel import force_locale
    with app.test_request_context(), force_locale(locale):
        assert money(value, short) == expected


def test_money_shows_with_its_sign_on_the_referral_page(world, as_user):
    referral = factories.submit(world.partner_a, amount="700000")
    html = as_user(world.partner_a).get(f"/partner/referrals/{referral.id}").get_data(as_text=True)
    assert "¥700,000.00" in html and "¥1,200,000.00" in html


# --- the administrator's rate tables ------------------------------------------------------------

@pytest.fixture
def restore_rates(app):
    before = [(r.product_code, r.min_term_months, r.max_term_months, r.annual_rate)
              for r in db.session.scalars(select(ProductRate))]
    yield
    db.session.rollback()
    db.session.execute(ProductRate.__table__.delete())
    for code, low, high, rate in before:
        db.session.add(ProductRate(product_code=code, min_term_months=low, max_term_months=high,
                                   annual_rate=rate))
    db.session.commit()


def test_an_admin_changes_a_rate_table_and_it_is_audited(app, world, as_user, restore_rates):
    client = as_user(world.admin)
    page = client.get("/admin/products/consumer_loan/rates")
    assert page.status_code == 200
    response = client.post("/admin/products/consumer_loan/rates", data={
        "low_0": "1", "high_0": "24", "rate_0": "3.3",
        "low_1": "25", "high_1": "60", "rate_1": "3.95"})
    assert response.status_code == 302
    consumer = db.session.get(Product, "consumer_loan")
    assert [(b.min_term_months, b.max_term_months, b.annual_rate) for b in consumer.rates] == [
        (1, 24, Decimal("3.300")), (25, 60, Decimal("3.950"))]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "product.rates"))
    assert entry.target_type == "product" and entry.target_id == "consumer_loan"
    assert entry.detail["after"] == [[1, 24, "3.300"], [25, 60, "3.950"]]
    # The partner's sheet shows the new rate at once.
    agent = app.test_client()
    login(agent, world.agent_a)
    html = agent.get("/partner/products").get_data(as_text=True)
    assert "3.95%" in html


@pytest.mark.parametrize("form, message", [
    ({"low_0": "1", "high_0": "24", "rate_0": "3.3", "low_1": "30", "high_1": "60",
      "rate_1": "3.9"}, "without gap or overlap"),
    ({"low_0": "1", "high_0": "24", "rate_0": "3.3"}, "longest term, 60 months"),
    ({"low_0": "1", "high_0": "60", "rate_0": "40"}, "from 0 to 36 percent"),
    ({"low_0": "1", "high_0": "99", "rate_0": "3"}, "from 1 to 60 months"),
])
def test_a_rate_table_with_a_hole_is_refused_and_kept_as_typed(world, as_user, restore_rates,
                                                                form, message):
    client = as_user(world.admin)
    response = client.post("/admin/products/consumer_loan/rates", data=form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    assert f'value="{form["rate_0"]}"' in html
    consumer = db.session.get(Product, "consumer_loan")
    assert [(b.min_term_months, b.max_term_months) for b in consumer.rates] == [(1, 12), (13, 60)]
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "product.rates")) == 0


def test_rates_are_saved_through_the_service_only_by_an_admin_page(world, restore_rates):
    consumer = db.session.get(Product, "consumer_loan")
    product_tools.save_rates(Ctx(user=world.admin), consumer,
                             [{"low": "1", "high": "60", "rate": "0"}])
    assert product_tools.rate_for(consumer, 60) == Decimal("0")


def _testid(html: str, name: str) -> str:
    start = html.index(f'data-testid="{name}"')
    return html[start:html.index("</dd>", start)]


def test_the_product_sheet_in_chinese_writes_round_limits_in_wan(world, as_user):
    html = as_user(world.agent_a).get("/partner/products",
                                      headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    sheet = html[html.index('data-product="auto_loan"'):html.index('data-product="consumer_loan"')]
    assert "2万元" in sheet and "200万元" in sheet and "购车发票" in sheet
