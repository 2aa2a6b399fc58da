"""The rendering shortcuts every list leans on write exactly what Babel writes."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from babel.numbers import format_decimal as babel_format_decimal
from flask import render_template_string
from flask_babel import force_locale, format_datetime, get_locale

from models import Product, Referral
from portal import formatting
from portal.extensions import db
from portal.services import Ctx, referrals
from tests import factories
from tests.conftest import login

MOMENTS = [
    datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
    datetime(2025, 12, 31, 15, 59, 59, 999999, tzinfo=UTC),  # the bank's day turns at 16:00 UTC
    datetime(2026, 6, 30, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
    datetime(2026, 3, 8, 2, 30),  # stored naive: UTC
]


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_the_date_time_filter_writes_what_babel_writes(app, language):
    with app.test_request_context("/", headers={"Accept-Language": language}):
        dt = app.jinja_env.filters["dt"]
        for moment in MOMENTS:
            assert dt(moment) == format_datetime(moment, "yyyy-MM-dd HH:mm")
        assert dt(MOMENTS[1]) == "2025-12-31 23:59"
        assert dt(MOMENTS[3]) == "2026-03-08 10:30"
        assert dt(None) == "—"
        # Another pattern, and a plain date, still go through Babel.
        assert dt(MOMENTS[0], "yyyy-MM-dd") == format_datetime(MOMENTS[0], "yyyy-MM-dd")
        assert dt(date(2026, 5, 1)) == format_datetime(date(2026, 5, 1), "yyyy-MM-dd HH:mm")


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_amounts_are_written_as_babel_writes_them(app, language):
    # Every grouping length, fen rounded half-even both ways, and amounts beyond a float's
    # exact digits (written by Python's Decimal format on these locales: formatting.py).
    amounts = [Decimal("0"), Decimal("0.5"), Decimal("1234567.891"), Decimal("-500"),
               Decimal("100000000000.00"), Decimal("0.005"), Decimal("0.015"),
               Decimal("999.995"), Decimal("12"), Decimal("123"), Decimal("1234"),
               Decimal("12345.6"), Decimal("123456"), Decimal("-0.01"),
               Decimal("98765432109876543.21"), 1500, 2500.75]
    with app.test_request_context("/", headers={"Accept-Language": language}):
        locale = str(get_locale())
        for amount in amounts:
            exact = abs(Decimal(str(amount)))
            expected = babel_format_decimal(exact.quantize(Decimal("0.01")),
                                            format="#,##0.00", locale=locale)
            assert formatting.money(amount) == ("-" if amount < 0 else "") + f"¥{expected}"
        assert formatting.percent(Decimal("4.9")) == "4.90%"


def test_a_page_string_follows_a_locale_forced_inside_the_request(app):
    # An e-mail rendered in the addressee's language in the middle of an English request must
    # find its own catalogue, and the page its own again afterwards.
    template = "{{ _('Work queue') }}"
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert render_template_string(template) == "Work queue"
        with force_locale("zh_CN"):
            assert render_template_string(template) == "待办队列"
        assert render_template_string(template) == "Work queue"


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_the_templates_underscore_writes_what_jinjas_gettext_writes(app, language):
    """_() is portal.i18n.page_gettext; gettext() is still Jinja's own newstyle function."""
    calls = ["'Work queue'", "'Late'", "'%%(n)d%%%%', n=5", "'since %(when)s', when='<b>x</b>'",
             "'The %(shown)d longest waiting of %(all)d.', shown=10, all=31",
             "'Delete the saved filter “%(name)s”?', name='a&b'"]
    with app.test_request_context("/", headers={"Accept-Language": language}):
        for call in calls:
            for escaping in ("true", "false"):
                ours, jinjas = (app.jinja_env.from_string(
                    f"{{% autoescape {escaping} %}}{{{{ {name}({call}) }}}}{{% endautoescape %}}"
                ).render() for name in ("_", "gettext"))
                assert ours == jinjas, (call, escaping)
        assert app.jinja_env.from_string("{{ _('Work queue') }}").render() == (
            "Work queue" if language == "en" else "待办队列")


# The macros the row cells were (portal/cells.py), as they were written.
OLD_CELL_MACROS = """
{% macro status_badge(status, partner_view=False) -%}
  <span class="badge text-bg-{{ STATE_BADGES.get(status, 'secondary')
  }}" data-status="{{ status }}">{{ (PARTNER_STATES
    if partner_view else STATES).get(status, status) }}</span>
{%- endmacro %}
{% macro product_name(product) -%}
  {{ product.display_name(get_locale()|string) if product else '—' }}
{%- endmacro %}
"""


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_the_row_cells_write_what_their_macros_wrote(app, world, language):
    """Every state's badge, for the bank and for the partner, and a product's name (or none),
    in both languages; a state no label knows is written escaped, as the macro wrote it."""
    from portal.labels import STATES

    product = db.session.get(Product, "consumer_loan")
    with app.test_request_context("/", headers={"Accept-Language": language}):
        for status in [*STATES, "conflict", "<b>odd</b>"]:
            for partner_view in (False, True):
                call = f"status_badge({status!r}, partner_view={partner_view})"
                ours = app.jinja_env.from_string("{{ " + call + " }}").render()
                theirs = app.jinja_env.from_string(
                    OLD_CELL_MACROS + "{{ " + call + " }}").render().strip()
                assert ours == theirs, call
        for value in (product, None):
            ours = app.jinja_env.from_string("{{ product_name(p) }}").render(p=value)
            theirs = app.jinja_env.from_string(
                OLD_CELL_MACROS + "{{ product_name(p) }}").render(p=value).strip()
            assert ours == theirs == (
                "—" if value is None else product.name_zh if language == "zh-CN"
                else product.name_en)


def _menu(page: str) -> str:
    start = page.index('<ul class="navbar-nav me-auto">')
    return page[start:page.index('<div class="header-user">', start)]


def test_the_kept_menu_is_the_menu_drawn_afresh_for_each_role_page_and_language(
        app, world, client):
    kept = app.extensions["main_menu"]
    seen = {}
    for who, paths in (("agent_a", ["/partner/", "/partner/referrals"]),
                       ("partner_a", ["/partner/"]),
                       ("officer", ["/bank/queue", "/bank/referrals"]),
                       ("manager", ["/bank/queue"]), ("admin", ["/admin/audit"])):
        user = getattr(world, who)
        login(client, user)
        for path in paths:
            for language in ("en", "zh-CN"):
                headers = {"Accept-Language": language}
                kept.clear()
                drawn = _menu(client.get(path, headers=headers).get_data(as_text=True))
                assert len(kept) == 1
                again = _menu(client.get(path, headers=headers).get_data(as_text=True))
                assert again == drawn and len(kept) == 1  # the second page used the kept one
                assert drawn.count('aria-current="page"') == 1
                assert user.name not in drawn and user.email not in drawn
                seen[(who, path, language)] = drawn
        client.post("/logout")
    # Each page, role and language has its own menu.
    assert seen[("agent_a", "/partner/", "en")] != seen[("agent_a", "/partner/referrals", "en")]
    assert seen[("agent_a", "/partner/", "en")] != seen[("agent_a", "/partner/", "zh-CN")]
    assert seen[("agent_a", "/partner/", "en")] != seen[("partner_a", "/partner/", "en")]
    assert "Administration" in seen[("admin", "/admin/audit", "en")]
    assert "Administration" not in seen[("manager", "/bank/queue", "en")]
    assert "Conflicts" not in seen[("officer", "/bank/queue", "en")]


def test_two_partners_on_the_same_page_see_their_own_unread_counts(app, world, client):
    referral = factories.submit(world.partner_a)
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.commit()
    login(client, world.partner_a)
    mine = _menu(client.get("/partner/").get_data(as_text=True))
    client.post("/logout")
    login(client, world.partner_b)
    theirs = _menu(client.get("/partner/").get_data(as_text=True))
    assert 'data-testid="unread-count"' in mine
    assert 'data-testid="unread-count"' not in theirs


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_the_hours_filter_writes_what_flask_babel_writes(app, language):
    from flask_babel import gettext

    hours = app.jinja_env.filters["hours"]
    with app.test_request_context("/", headers={"Accept-Language": language}):
        assert hours(None) == "—"
        assert hours(3600) == gettext("%(n)s h", n="1.0")
        assert hours(47 * 3600) == gettext("%(n)s h", n="47.0")
        assert hours(48 * 3600) == gettext("%(n)s d", n="2.0")
        assert hours(48 * 3600) == ("2.0 d" if language == "en" else "2.0 天")


# The work queue's row as templates/bank/queue.html drew it before blueprints/bank/queue_rows.py.
OLD_QUEUE_ROW = """
{% set late_badge %}<span class="badge text-bg-danger" data-testid="sla">{{ _('Late') }}</span>{% endset %}
{% set due_soon_badge %}<span class="badge text-bg-warning" data-testid="sla">{{ _('Due soon') }}</span>{% endset %}
{% set take_label = _('Take') %}
  {% for r in items %}
    {% set waited = wait(r) %}{% set level = sla_level(waited) %}
    <tr data-testid="queue-row" data-referral-id="{{ r.id }}">
      {% set href = url_for('bank.referral', referral_id=r.id) %}
      <td><a href="{{ href }}">{{ r.id }}</a></td>
      <td data-sla="{{ level }}"><span data-testid="bank-age">{{ waited|hours }}</span> {% if level == 'red' %}{{ late_badge }}{% elif level == 'amber' %}{{ due_soon_badge }}{% endif %}</td>
      <td>{{ status_badge(r.status) }}{% if r.import_batch_id %} <span class="badge text-bg-light border" data-testid="imported" title="{{ _('Brought in by a history import, not submitted through the portal') }}">{{ _('Imported') }}</span>{% endif %}
        <div class="small text-muted">{{ _('since %(when)s', when=r.status_changed_at|dt) }}</div></td>
      <td class="small">{{ r.submitted_at|dt }}</td>
      <td>{{ r.org.name }} <span class="text-muted small">{{ PARTNER_TYPES.get(r.org.kind, r.org.kind) }}</span></td>
      <td>{{ product_name(r.product) }}</td>
      <td><a href="{{ href }}">{{ r.buyer_name }}</a></td>
      <td data-testid="class"><span class="badge class-badge class-{{ r.customer_class }}">{{ r.customer_class }}</span></td>
      <td class="text-end">{{ r.amount|money }}</td>
      <td data-testid="assignee">
        {% if r.assigned_to %}{{ r.assigned_to.name }}{% if r.assigned_to_id == viewer_id %} <span class="badge text-bg-info">{{ _('you') }}</span>{% endif %}
        {% else %}<span class="text-muted">{{ _('Unassigned') }}</span>
          {% if may_take %}<button type="submit" form="take-form" formaction="{{ url_for('bank.take_referral', referral_id=r.id) }}" class="btn btn-sm btn-outline-primary" data-testid="take">{{ take_label }}</button>{% endif %}
        {% endif %}
      </td>
    </tr>
  {% endfor %}
"""  # noqa: E501


def _cells_apart(html: str) -> str:
    """Whitespace as a browser reads it: runs of it one space, none around a row or cell."""
    html = re.sub(r"\s+", " ", html)
    return re.sub(r"\s*(</?(?:tr|td)\b[^>]*>)\s*", r"\1", html).strip()


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_the_queue_rows_write_what_the_template_wrote(app, world, language):
    """Rows of every kind: waiting a little (nobody's, with and without Take), amber (the
    viewer's: "you"), red (a colleague's), imported, a partner and a buyer whose names need
    escaping, an amount to the fen."""
    from blueprints.bank import queue_rows
    from models import ImportBatch, utcnow
    from portal.services import assignment, queue

    now = utcnow()
    hour = timedelta(hours=1)
    world.org_b.name = 'Broker <b>"&"</b>'
    colleague = factories.UserFactory.bank("credit_officer", name="Li <i>Na</i>",
                                           email="li@bank.test")
    batch = ImportBatch(kind="history", filename="old.csv")
    db.session.add(batch)
    db.session.flush()
    fresh = factories.submit(world.partner_a, at=now - hour)
    amber = factories.submit(world.partner_b, at=now - 30 * hour, buyer_name="王<五>&",
                             amount=Decimal("123456.78"))
    red = factories.submit(world.partner_a, at=now - 90 * hour)
    imported = factories.submit(world.partner_b, at=now - 2 * hour)
    imported.import_batch_id = batch.id
    db.session.commit()
    assignment.take(Ctx(user=world.officer), amber)
    assignment.take(Ctx(user=colleague), red)
    db.session.commit()
    items = [db.session.get(Referral, r.id) for r in (fresh, amber, red, imported)]
    with app.test_request_context("/bank/queue", headers={"Accept-Language": language}):
        for may_take in (True, False):
            ours = queue_rows.rows(items, now, viewer_id=world.officer.id, may_take=may_take)
            theirs = app.jinja_env.from_string(OLD_QUEUE_ROW).render(
                items=items, may_take=may_take, viewer_id=world.officer.id,
                wait=lambda r: referrals.bank_clock_seconds(r, now),
                sla_level=queue.sla_level)
            assert _cells_apart(str(ours)) == _cells_apart(theirs)
            assert str(ours).count('data-testid="queue-row"') == 4
            assert 'data-sla="red"' in ours and 'data-sla="amber"' in ours
            assert ('data-testid="take"' in ours) is may_take
            assert "&lt;b&gt;" in ours and "<b>" not in ours and "<i>" not in ours
