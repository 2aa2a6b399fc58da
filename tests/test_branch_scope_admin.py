"""A branch's administrator and the admin lists that concern partners (issue 14): the users list
(/admin/users) and the history imports (/admin/imports).

EAST's administrator lists and acts on the users of EAST's partners and the bank's staff, never
on partner B's (WEST) users — those are not found, as partner B's organisation is. Imports name
partners of any branch: EAST's administrator's import writes for EAST's partners only (a WEST
code is refused as unknown, exactly like a code that does not exist), and they see the jobs
their subtree's staff started; the province's administrators see every job and every user.
"""

from __future__ import annotations

from sqlalchemy import func, select

from models import Referral, User
from portal.extensions import db
from portal.services import Ctx, imports
from tests import factories
from tests.test_branch_scope import _client, tree  # noqa: F401  (the EAST/WEST tree)
from tests.test_import_jobs import HEADER


def _row(org_code: str, ref: str, i: int) -> str:
    return (f"{org_code},{ref},consumer_loan,买家{i},{factories.national_id(700 + i)},"
            f"1391234{i:04d},government,20000,50000,24,2026-02-03T09:00:00+08:00,")


def _history(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def test_a_branch_admin_lists_only_their_partners_users(app, tree):  # noqa: F811
    east, province = _client(app, tree.east_admin), _client(app, tree.admin)
    east_page = east.get("/admin/users?q=").get_data(as_text=True)
    assert tree.partner_a.email in east_page and tree.partner_b.email not in east_page
    # The bank's own staff are not a partner's objects: still listed.
    assert tree.west_manager.email in east_page
    # Filtering on B's organisation by its id finds nothing either.
    by_org = east.get(f"/admin/users?org={tree.org_b.id}").get_data(as_text=True)
    assert tree.partner_b.email not in by_org
    whole = province.get("/admin/users").get_data(as_text=True)
    assert tree.partner_a.email in whole and tree.partner_b.email in whole


def test_a_branch_admin_cannot_act_on_another_branchs_partner_user(app, tree):  # noqa: F811
    east = _client(app, tree.east_admin)
    b_user = tree.partner_b.id
    for action in ("deactivate", "activate", "reset-password"):
        assert east.post(f"/admin/users/{b_user}/{action}").status_code == 404, action
    assert east.get(f"/admin/users/{b_user}/branch").status_code == 404
    db.session.expire_all()
    assert db.session.get(User, b_user).active
    # Their own partner's user is theirs to deactivate.
    done = east.post(f"/admin/users/{tree.partner_a.id}/deactivate")
    assert done.status_code == 302
    db.session.expire_all()
    assert not db.session.get(User, tree.partner_a.id).active


def test_a_branch_admins_import_writes_for_their_partners_only(app, tree):  # noqa: F811
    """The attack: EAST's administrator imports history naming WEST's partner B."""
    report = imports.import_referrals(
        Ctx(user=tree.east_admin),
        _history(_row("PARTNERA", "E-1", 1), _row("PARTNERB", "W-1", 2),
                 _row("NOSUCH", "X-1", 3)), "mixed.csv")
    db.session.commit()
    assert report.created == 1
    reasons = dict(report.rejects)
    # B's row is refused in the very words a code that does not exist is.
    assert reasons[3] == reasons[4].replace("NOSUCH", "PARTNERB")
    assert db.session.scalar(select(func.count()).select_from(Referral)
                             .where(Referral.org_id == tree.org_b.id)) == 0
    # The province's import writes for every branch.
    report = imports.import_referrals(Ctx(user=tree.admin), _history(_row("PARTNERB", "W-1", 2)),
                                      "west.csv")
    db.session.commit()
    assert report.created == 1


def test_a_branch_admin_sees_the_imports_of_their_subtree(app, tree):  # noqa: F811
    east_job = imports.import_referrals(Ctx(user=tree.east_admin),
                                        _history(_row("PARTNERA", "E-2", 4)), "east-file.csv")
    province_job = imports.import_referrals(Ctx(user=tree.admin),
                                            _history(_row("PARTNERB", "W-2", 5)),
                                            "province-file.csv")
    db.session.commit()
    east, province = _client(app, tree.east_admin), _client(app, tree.admin)
    page = east.get("/admin/imports").get_data(as_text=True)
    assert "east-file.csv" in page and "province-file.csv" not in page
    for url in (f"/admin/imports/{province_job.batch_id}",
                f"/admin/imports/{province_job.batch_id}/progress",
                f"/admin/imports/{province_job.batch_id}/rejects.csv"):
        assert east.get(url).status_code == 404, url
    assert east.post(f"/admin/imports/{province_job.batch_id}/cancel").status_code == 404
    assert east.get(f"/admin/imports/{east_job.batch_id}").status_code == 200
    whole = province.get("/admin/imports").get_data(as_text=True)
    assert "east-file.csv" in whole and "province-file.csv" in whole
