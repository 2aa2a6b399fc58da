"""POST /api/v1/referrals/batch: group referrals (集团营销) over the API (docs/contract.md).

Each item is what `submitReferral` takes and gets what it would have answered alone (the
referral, or the error body with its status), beside its index; the batch answers 200 whatever
its items' fates. One transaction for the batch; a refused item writes nothing (see
services/group_referrals.py). The Idempotency-Key covers the whole batch.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from models import Referral, Stipulation
from portal.extensions import db
from portal.i18n import lazy_gettext as _l
from portal.services import group_referrals
from portal.services.errors import ValidationFailed

from . import schemas
from .common import bp, ctx, json_body, json_response, parse, partner_only, rate_limited, user
from .idempotency import claim_key, idempotent
from .openapi import operation
from .routes import _referral_out


def _items(raw: list) -> tuple[list[group_referrals.Item], set[int]]:
    """Each item read by the single endpoint's body schema; one that fails is refused alone
    (its index in the set returned: its errors already name the body's fields)."""
    items, malformed = [], set()
    for index, value in enumerate(raw):
        item = group_referrals.Item(index, {})
        try:
            if not isinstance(value, dict):
                raise ValidationFailed({"body": _l("Send a JSON object.")})
            item.data = parse(schemas.ReferralIn, value).intake()
        except ValidationFailed as exc:
            item.error = exc
            malformed.add(index)
        items.append(item)
    return items, malformed


def _error(item: group_referrals.Item, malformed: set[int]) -> dict:
    error = item.error
    fields = error.fields
    if item.index not in malformed:  # the service names the flat intake fields
        fields = {schemas.INTAKE_FIELDS.get(k, k): v for k, v in fields.items()}
    return {"code": error.code, "message": str(error.message),
            "fields": {k: str(v) for k, v in fields.items()}}


def _load_for_answer(new: list[Referral]) -> None:
    """What the answer reads of the new referrals (their items' files, the decision), loaded
    a few hundred at a time rather than one query per referral."""
    for start in range(0, len(new), 250):
        ids = [r.id for r in new[start:start + 250]]
        db.session.scalars(select(Referral).where(Referral.id.in_(ids)).options(
            selectinload(Referral.stipulations).selectinload(Stipulation.documents),
            selectinload(Referral.decision))).all()


@bp.route("/referrals/batch", methods=["POST"])
@operation(
    "submitReferralBatch", "Submit up to 500 buyer referrals at once (partner roles)",
    tag="referrals",
    description="200 with one result per item, in order: `status` is what `submitReferral` "
                "would have answered for the item alone (201 with `referral`; 403, 409 or 422 "
                "with `error`, nothing written for it), attribution checked buyer by buyer. A "
                "buyer given twice in the batch is registered once (the other 409 "
                "`already_registered`); an `external_ref` given twice is taken by the first. "
                "The whole request is refused (nothing written) for an empty batch or one of "
                "more than 500 items (422, `fields.items`), a caller who may not submit (403) "
                "or a body over the size limit (413). The Idempotency-Key covers the batch.",
    body=schemas.ReferralBatchIn,
    responses={200: (schemas.ReferralBatchOut, "One result per item.")},
    errors=("403", "422"))
@rate_limited
@idempotent(claim_late=True)
def submit_referral_batch():
    partner_only()
    body = json_body(schemas.BatchShape)
    caller = user()
    if len(body.items) > group_referrals.MAX_ITEMS:
        raise ValidationFailed({"items": _l("At most %(n)d buyers in one batch.",
                                            n=group_referrals.MAX_ITEMS)})
    items, malformed = _items(body.items)
    prepared = group_referrals.check(ctx(), caller.org, items)
    replay = claim_key()
    if replay is not None:
        return replay
    batch = group_referrals.submit(ctx(), caller.org, items, prepared)
    _load_for_answer([i.referral for i in batch.accepted])
    results = []
    for item in batch.items:
        if item.error is None:
            results.append({"index": item.index, "status": 201,
                            "referral": _referral_out(item.referral, caller)})
        else:
            results.append({"index": item.index, "status": item.error.status,
                            "error": _error(item, malformed)})
    return json_response({"results": results, "submitted": len(batch.accepted),
                          "refused": len(batch.refused)})
