from sqlalchemy import func, select

from models import Product, Referral
from portal.extensions import db
from tests import factories


def test_healthz_reports_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_migrations_load_the_product_checklists(app):
    products = db.session.scalars(select(Product).order_by(Product.code)).all()
    assert [p.code for p in products] == ["auto_loan", "consumer_loan", "housing_mortgage",
                                          "study_abroad_loan"]
    mortgage = db.session.get(Product, "housing_mortgage")
    assert [d.kind for d in mortgage.required_documents] == [
        "id_card", "income_proof", "purchase_contract", "down_payment_receipt"]


def test_referral_submitted_through_service_is_stored(world):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    assert db.session.scalar(select(func.count(Referral.id))) == 1
    assert referral.status == "submitted" and referral.clock == "bank"
    assert len(referral.stipulations) == 4


def test_every_page_has_a_favicon_and_the_browsers_default_address_answers(client):
    ico = client.get("/favicon.ico")
    assert ico.status_code == 200 and ico.data[:4] == b"\x00\x00\x01\x00"  # an ICO file
    page = client.get("/login").get_data(as_text=True)
    linked = page.split('rel="icon" href="', 1)[1].split('"', 1)[0]
    svg = client.get(linked)
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
