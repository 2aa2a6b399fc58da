"""The intake form's asset fields in a real browser: required, and shown, for the products
secured on what the buyer buys (static/js/intake.js)."""

from tests.test_browser import log_in, people  # noqa: F401  (the fixture)


def _asset(page, name):
    return page.locator(f"[name={name}]")


def test_the_asset_fields_follow_the_product_chosen(page, people):  # noqa: F811
    log_in(page, people.agent_a)
    page.goto("/partner/referrals/new")
    assert _asset(page, "asset_price").is_visible()  # no product yet: shown, with their help
    page.select_option("select[name=product]", "auto_loan")
    for name in ("asset_description", "asset_price", "down_payment"):
        field = _asset(page, name)
        assert field.is_visible()
        assert field.evaluate("e => e.required") is True
        assert field.get_attribute("aria-required") == "true"
    page.select_option("select[name=product]", "consumer_loan")
    for name in ("asset_description", "asset_price", "down_payment"):
        field = _asset(page, name)
        assert not field.is_visible()
        assert field.evaluate("e => e.required") is False
        assert field.get_attribute("aria-required") is None
