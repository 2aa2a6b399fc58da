"""Group referrals (集团营销, issue 14 point 5): a CSV file of buyers on the partner's pages and
POST /api/v1/referrals/batch. Each buyer is checked as a single submission is; refused rows and
items write nothing, the others are registered in one transaction with attribution per buyer."""

from __future__ import annotations

import csv
import io
import re
import time

import pytest
from sqlalchemy import func, select

from models import AuditEntry, BuyerRegistration, IdempotencyRecord, Referral
from portal.extensions import db
from portal.services import group_referrals, pii
from tests import factories
from tests.integration_helpers import api_body, auth, make_key

COLUMNS = group_referrals.COLUMNS
BORN = "19900101"  # buyers of these tests: none of the factories' own
# line -> (column, what makes the row bad)
_GOOD_ID = factories.national_id(10, born=BORN)
BAD = {12: ("national_id", {"national_id": _GOOD_ID[:-1] + ("1" if _GOOD_ID[-1] == "0" else "0")}),
       58: ("consent", {"consent": ""}),
       131: ("amount", {"amount": "a lot"}),
       207: ("mobile", {"mobile": "12345"}),
       280: ("industry", {"industry": "piracy"})}


def count(model=Referral) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def row(seq: int, **overrides) -> dict:
    values = factories.intake(national_id=factories.national_id(seq, born=BORN),
                              mobile=factories.mobile(seq), consent="是",
                              external_ref=f"GRP-{seq:04d}", buyer_name=f"买家{seq}")
    values.update(overrides)
    return {c: values.get(c, "") for c in COLUMNS}


def file_of(rows: list[dict], encoding: str = "utf-8-sig") -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def three_hundred() -> tuple[bytes, dict[int, str]]:
    """300 rows (lines 2 to 301), five of them bad: {line: national ID} of the bad ones."""
    rows, ids = [], {}
    for seq in range(300):
        line = seq + 2
        overrides = BAD[line][1] if line in BAD else {}
        rows.append(row(seq, **overrides))
        if line in BAD:
            ids[line] = rows[-1]["national_id"]
    return file_of(rows), ids


def upload(client, data: bytes, name: str = "buyers.csv"):
    return client.post("/partner/referrals/group", data={
        "file": (io.BytesIO(data), name), "check": "1"}, content_type="multipart/form-data")


def payload_of(page: str) -> str:
    match = re.search(r'<input id="payload" name="payload" type="hidden" value="([^"]*)"', page)
    assert match, "the preview carries the file"
    import html

    return html.unescape(match.group(1))


def refused_cells(page: str) -> list[tuple[int, str]]:
    return [(int(line), column) for line, column in
            re.findall(r'<tr data-line="(\d+)" data-column="([^"]*)">', page)]


def language(client, lang: str) -> None:
    client.post(f"/language/{lang}")


# --- the file on the partner's pages ------------------------------------------------------------

def test_300_rows_with_five_bad_ones_submit_295_and_write_nothing_for_the_five(
        as_user, world, capsys):
    client = as_user(world.agent_a)
    language(client, "en")
    data, bad_ids = three_hundred()

    started = time.perf_counter()
    preview = upload(client, data)
    checked = time.perf_counter() - started
    assert preview.status_code == 200
    page = preview.get_data(as_text=True)
    assert "Rows that can be submitted: 295. Rows refused: 5." in page
    assert sorted(refused_cells(page)) == sorted((line, column) for line, (column, _) in
                                                 BAD.items())
    assert "Enter an amount in yuan" in page and "Choose the employer" in page
    assert count() == 0, "checking the file writes nothing"

    started = time.perf_counter()
    result = client.post("/partner/referrals/group",
                         data={"payload": payload_of(page), "confirm": "1"})
    submitted = time.perf_counter() - started
    assert result.status_code == 200
    page = result.get_data(as_text=True)
    assert "Buyers submitted: 295. Rows refused: 5 " in page
    assert sorted(refused_cells(page)) == sorted((line, c) for line, (c, _) in BAD.items())
    assert page.count('data-outcome="registered"') == 295

    assert count() == 295
    stored = db.session.scalars(select(Referral)).all()
    assert {r.org_id for r in stored} == {world.org_a.id}
    assert {r.submitted_by_id for r in stored} == {world.agent_a.id}
    refs = {r.external_ref for r in stored}
    assert all(f"GRP-{line - 2:04d}" not in refs for line in BAD)
    # Nothing of the refused buyers: no referral, not even the attribution lock's row.
    hashes = {pii.id_hashes(nid)[0] for nid in bad_ids.values() if len(nid) == 18}
    assert not db.session.scalar(select(func.count()).select_from(BuyerRegistration).where(
        BuyerRegistration.national_id_hash.in_(hashes)))
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "referral.batch"))
    assert entry.detail["submitted"] == 295 and entry.detail["refused"] == 5
    with capsys.disabled():
        print(f"\n[group upload] 300 rows: check {checked:.2f}s, check+submit {submitted:.2f}s")


def test_the_refusals_read_in_chinese_and_come_back_as_csv(as_user, world):
    client = as_user(world.partner_a)
    language(client, "zh_CN")
    data = file_of([row(1), row(2, consent="否"), row(3, national_id="123")])
    page = upload(client, data).get_data(as_text=True)
    assert sorted(refused_cells(page)) == [(3, "consent"), (4, "national_id")]
    assert "可以提交" in page  # the summary, translated
    refused = client.post("/partner/referrals/group/refused.csv", data={
        "rows": re.search(r'<input id="rows" name="rows" type="hidden" value="([^"]*)"',
                          page).group(1).replace("&#34;", '"').replace("&amp;", "&")})
    assert refused.status_code == 200
    assert refused.headers["Content-Disposition"].startswith("attachment")
    text = refused.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(text[1:])))
    assert lines[0] == [*COLUMNS, "error"]
    assert [line[COLUMNS.index("buyer_name")] for line in lines[1:]] == ["买家2", "买家3"]
    assert "consent" in lines[1][-1] and "national_id" in lines[2][-1]
    assert count() == 0


def test_a_gb18030_file_is_read(as_user, world):
    client = as_user(world.agent_a)
    language(client, "en")
    data = file_of([row(7, employer="市第一中学")], encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    page = upload(client, data).get_data(as_text=True)
    assert "Rows that can be submitted: 1. Rows refused: 0." in page
    client.post("/partner/referrals/group", data={"payload": payload_of(page), "confirm": "1"})
    stored = db.session.scalar(select(Referral))
    assert stored.buyer_name == "买家7" and stored.employer == "市第一中学"


def test_the_template_round_trips(as_user, world, client):
    as_user(world.partner_a)
    language(client, "en")
    template = client.get("/partner/referrals/group/template.csv")
    assert template.status_code == 200
    raw = template.get_data()
    assert raw.startswith(b"\xef\xbb\xbf"), "a BOM, so that Excel reads the Chinese"
    header, example = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(header) == COLUMNS and "张伟" in example
    page = upload(client, raw).get_data(as_text=True)
    assert "Rows that can be submitted: 1. Rows refused: 0." in page


@pytest.mark.parametrize("data,message", [
    (b"x" * (group_referrals.MAX_BYTES + 1), "larger than 256 KB"),
    (None, "more than 500 rows"),
    (b"name,mobile\nA,139\n", "missing column(s)"),
    (b"\xff\xfe\x00\x00\x81", "neither UTF-8 nor GB18030"),
    (b"", "Choose a CSV file"),
])
def test_a_file_too_large_or_not_the_template_is_refused_whole(as_user, world, data, message):
    client = as_user(world.partner_a)
    language(client, "en")
    if data is None:
        data = file_of([row(seq) for seq in range(501)])
        assert len(data) <= group_referrals.MAX_BYTES
    response = (upload(client, data) if data else client.post(
        "/partner/referrals/group", data={"check": "1"}))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert count() == 0


def test_a_buyer_or_reference_twice_in_the_file_is_refused_the_second_time(as_user, world):
    client = as_user(world.partner_a)
    language(client, "en")
    twice = row(1)
    data = file_of([twice, dict(twice, external_ref="OTHER"), row(2, external_ref="GRP-0001")])
    page = upload(client, data).get_data(as_text=True)
    assert sorted(refused_cells(page)) == [(3, ""), (4, "external_ref")]
    assert "repeats line 2 of the file" in page
    client.post("/partner/referrals/group", data={"payload": payload_of(page), "confirm": "1"})
    assert count() == 1


def test_attribution_is_checked_buyer_by_buyer(as_user, world):
    held_by_b = factories.submit(world.partner_b, national_id=factories.national_id(3, BORN))
    db.session.commit()
    client = as_user(world.partner_a)
    language(client, "en")
    page = upload(client, file_of([row(3), row(4)])).get_data(as_text=True)
    page = client.post("/partner/referrals/group", data={
        "payload": payload_of(page), "confirm": "1"}).get_data(as_text=True)
    assert page.count('data-outcome="conflict"') == 1
    assert page.count('data-outcome="registered"') == 1
    mine = db.session.scalars(select(Referral).where(Referral.org_id == world.org_a.id)).all()
    assert sorted(r.status for r in mine) == ["conflict", "submitted"]
    assert held_by_b.status == "submitted"


def test_the_payload_is_checked_again_and_is_the_own_org_only(as_user, world):
    """The confirmation carries the file through the browser: what comes back is checked again
    and lands in the user's own organisation, whatever it says."""
    client = as_user(world.partner_b)
    language(client, "en")
    text = file_of([row(5), row(6, amount="0")]).decode("utf-8-sig")
    response = client.post("/partner/referrals/group", data={"payload": text, "confirm": "1",
                                                               "org_id": world.org_a.id})
    assert response.status_code == 200
    assert "Buyers submitted: 1. Rows refused: 1 " in response.get_data(as_text=True)
    assert [r.org_id for r in db.session.scalars(select(Referral))] == [world.org_b.id]


# --- the API ------------------------------------------------------------------------------------

def item(seq: int, **overrides) -> dict:
    flat = row(seq)
    return api_body(**{"buyer.national_id": flat["national_id"], "buyer.mobile": flat["mobile"],
                       "external_ref": flat["external_ref"], **overrides})


def post_batch(client, key, items, **headers):
    return client.post("/api/v1/referrals/batch", json={"items": items},
                       headers=auth(key, **headers))


def test_the_batch_answers_each_item_as_the_single_endpoint_would(client, world):
    key = make_key(world.agent_a)
    items = [item(1), item(2, amount="lots"), item(3, **{"buyer.national_id": "1234"}),
             item(1, external_ref="AGAIN"), item(4)]
    response = post_batch(client, key, items, **{"Accept-Language": "en"})
    assert response.status_code == 200, response.json
    out = response.json
    assert [(i["index"], i["status"]) for i in out["results"]] == [
        (0, 201), (1, 422), (2, 422), (3, 409), (4, 201)]
    assert out["submitted"] == 2 and out["refused"] == 3
    assert set(out["results"][1]["error"]["fields"]) == {"amount"}
    assert out["results"][2]["error"]["code"] == "invalid"
    assert set(out["results"][2]["error"]["fields"]) == {"buyer.national_id"}
    assert out["results"][3]["error"]["code"] == "already_registered"
    single = client.post("/api/v1/referrals", json=item(1, external_ref="ALONE"),
                         headers=auth(key, **{"Accept-Language": "en"})).json
    assert single["error"] == out["results"][3]["error"], "the same error as alone"
    first = out["results"][0]["referral"]
    assert first["external_ref"] == "GRP-0001" and first["status"] == "submitted"
    assert first["org_code"] == "PARTNERA" and "national_id" not in first["buyer"]
    assert count() == 2


def test_a_replay_returns_the_same_answer_and_another_body_is_refused(client, world):
    key = make_key(world.partner_a)
    items = [item(seq) for seq in range(10)] + [item(10, amount="x")]
    first = post_batch(client, key, items, **{"Idempotency-Key": "group-1"})
    assert first.status_code == 200 and first.json["submitted"] == 10
    again = post_batch(client, key, items, **{"Idempotency-Key": "group-1"})
    assert again.status_code == 200
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count() == 10
    other = post_batch(client, key, items[:5], **{"Idempotency-Key": "group-1"})
    assert other.status_code == 422
    assert other.json["error"]["code"] == "idempotency_key_reused"
    assert count() == 10 and count(IdempotencyRecord) == 1


def test_more_than_500_items_or_none_are_refused_whole(client, world):
    key = make_key(world.partner_a)
    response = post_batch(client, key, [item(seq % 900) for seq in range(501)],
                          **{"Accept-Language": "en"})
    assert response.status_code == 422
    assert response.json["error"]["fields"] == {"items": "At most 500 buyers in one batch."}
    assert post_batch(client, key, []).status_code == 422
    assert client.post("/api/v1/referrals/batch", json={"items": "all"},
                       headers=auth(key)).status_code == 422
    assert count() == 0


@pytest.mark.parametrize("role", ["officer", "manager", "admin"])
def test_bank_roles_cannot_batch(client, world, role):
    response = post_batch(client, make_key(getattr(world, role)), [item(1)])
    assert response.status_code == 403 and count() == 0


def test_a_partner_cannot_batch_for_another_org(client, world):
    """Every item lands in the caller's own organisation, whatever the body names; a buyer
    the other partner holds is put in conflict (the answer names no partner)."""
    factories.submit(world.partner_a, national_id=factories.national_id(20, BORN))
    db.session.commit()
    key = make_key(world.partner_b)
    body = {"org_code": "PARTNERA", "org_id": world.org_a.id,
            "items": [dict(item(20), org_code="PARTNERA"), dict(item(21), org_id=world.org_a.id)]}
    response = client.post("/api/v1/referrals/batch", json=body, headers=auth(key))
    assert response.status_code == 200
    out = response.json["results"]
    assert [i["referral"]["org_code"] for i in out] == ["PARTNERB", "PARTNERB"]
    assert [i["referral"]["status"] for i in out] == ["conflict", "submitted"]
    assert "PARTNERA" not in response.get_data(as_text=True).replace('"org_code":"PARTNERA"', "")
    theirs = db.session.scalars(select(Referral).where(Referral.org_id == world.org_b.id)).all()
    assert len(theirs) == 2


def test_500_items_in_one_batch(client, world, capsys):
    key = make_key(world.partner_a)
    items = [item(seq) for seq in range(500)]
    started = time.perf_counter()
    response = post_batch(client, key, items)
    took = time.perf_counter() - started
    assert response.status_code == 200
    assert response.json["submitted"] == 500 and count() == 500
    with capsys.disabled():
        print(f"\n[batch API] 500 items: {took:.2f}s")


def test_the_openapi_document_describes_the_batch(client):
    doc = client.get("/api/v1/openapi.json").json
    batch = doc["paths"]["/referrals/batch"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in batch["parameters"]}
    assert set(batch["responses"]) >= {"200", "401", "403", "413", "422", "429"}
    assert batch["responses"]["200"]["headers"]["Idempotent-Replayed"]
    schemas = doc["components"]["schemas"]
    body = schemas["ReferralBatchIn"]["properties"]["items"]
    assert body["maxItems"] == 500 and body["minItems"] == 1
    assert body["items"]["$ref"].endswith("/ReferralIn")
    out = schemas["ReferralBatchOut"]["properties"]
    assert set(out) == {"results", "submitted", "refused"}
    result = schemas["BatchItemOut"]["properties"]
    assert set(result) == {"index", "status", "referral", "error"}


def test_what_the_page_chooses_once_is_applied_to_every_row(app, world):
    """The hook for the site of the group purchase: `defaults` go into each row's intake, over
    what the row says, before the intake schema checks it."""
    from portal.services import Ctx

    items = group_referrals.items_of_file([(2, row(30, product="")), (3, row(31, product="x"))])
    with app.test_request_context(headers={"Accept-Language": "en"}):
        batch = group_referrals.run(Ctx(user=world.agent_a), world.org_a, items,
                                    defaults={"product": "housing_mortgage"})
        assert [i.error for i in batch.items] == [None, None]
        assert {i.referral.product_code for i in batch.items} == {"housing_mortgage"}
        bare = group_referrals.run(Ctx(user=world.agent_a), world.org_a,
                                   group_referrals.items_of_file([(2, row(32, product=""))]))
        assert set(bare.refused[0].errors) == {"product"}
    db.session.rollback()


def test_the_site_chosen_on_the_page_is_every_buyers_site_and_another_partners_is_refused(
        as_user, world):
    """The group buys at one site: chosen once on the upload page, carried to the confirmation,
    named by every referral of the file. A site of another partner, posted by hand, refuses each
    row as the single form refuses it, and writes nothing."""
    from portal.services import Ctx, sites

    manager = Ctx(user=world.manager)
    garden = sites.create(manager, world.org_a, {"kind": "project", "code": "GARDEN",
                                                 "name": "Garden Phase 2", "active": True})
    other = sites.create(manager, world.org_b, {"kind": "showroom", "code": "B-SHOW",
                                                "name": "B's showroom", "active": True})
    db.session.commit()
    client = as_user(world.agent_a)
    language(client, "en")
    assert "Garden Phase 2 (GARDEN)" in client.get("/partner/referrals/group").get_data(True)

    data = file_of([row(40), row(41), row(42)])
    preview = client.post("/partner/referrals/group", data={
        "file": (io.BytesIO(data), "buyers.csv"), "site": str(garden.id), "check": "1"},
        content_type="multipart/form-data")
    page = preview.get_data(as_text=True)
    assert "Rows that can be submitted: 3." in page
    assert f'name="site" value="{garden.id}"' in page, "the confirmation keeps the site"
    result = client.post("/partner/referrals/group", data={
        "payload": payload_of(page), "site": str(garden.id), "confirm": "1"})
    assert "Buyers submitted: 3." in result.get_data(as_text=True)
    db.session.expire_all()
    assert {r.site_id for r in db.session.scalars(select(Referral))} == {garden.id}

    stolen = client.post("/partner/referrals/group", data={
        "file": (io.BytesIO(file_of([row(43)])), "buyers.csv"), "site": str(other.id),
        "check": "1"}, content_type="multipart/form-data")
    assert "Rows that can be submitted: 0. Rows refused: 1." in stolen.get_data(as_text=True)
    assert refused_cells(stolen.get_data(as_text=True)) == [(2, "site")]
    assert count() == 3
