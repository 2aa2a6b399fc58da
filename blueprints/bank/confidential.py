"""Bank pages for issue 10's confidentiality rules: submissions held for probing the attribution
answer (docs/attribution.md), and reveals of buyers' details with their purpose — the
officer's request past the hourly limit, the managers' decisions and the reveals per person.

Added to the bank blueprint (imported by register_blueprints).
"""

from __future__ import annotations

from datetime import date

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from blueprints import going_back_to, paginate, refused
from portal.labels import REVEAL_REASONS, REVEAL_REQUEST_STATUSES
from portal.security import bank_required, ctx, roles_required, safe_next
from portal.services import holds, referrals, reveals

from .forms import HeldReviewForm, RevealDecisionForm, RevealForm
from .routes import bp, partner_scope

managers_only = roles_required("channel_manager", "admin")


@bp.app_context_processor
def _menu_counts():
    """The bank menu's badges: held submissions and reveal requests waiting for a manager."""

    def held_waiting() -> int:
        if not current_user.is_authenticated or current_user.role not in reveals.APPROVERS:
            return 0
        return holds.held_count(current_user._get_current_object())

    def reveal_requests_waiting() -> int:
        if not current_user.is_authenticated or current_user.role not in reveals.APPROVERS:
            return 0
        return reveals.pending_count(current_user._get_current_object())

    return {"held_waiting": held_waiting, "reveal_requests_waiting": reveal_requests_waiting}


# --- held submissions --------------------------------------------------------------------------

@bp.route("/held")
@managers_only
def held():
    scope = partner_scope()
    page = paginate(holds.held_queue(current_user, all_partners=scope == "all"))
    return render_template("bank/held.html", page=page, scope=scope,
                           rows=referrals.with_holders(page.items, current_user),
                           bank_clock=referrals.bank_clock_seconds)


@bp.route("/referrals/<int:referral_id>/held", methods=["POST"])
@managers_only
def review_held(referral_id: int):
    referral = referrals.get_for(current_user, referral_id)
    form = HeldReviewForm()
    back = safe_next(form.next.data) or url_for("bank.held")
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for message in errors:
                flash(str(message), "danger")
        return redirect(back)
    with going_back_to(url=back):
        if form.decision.data == "release":
            went = holds.release(ctx(), referral, form.reason.data,
                                 expected_version=form.version.data)
        else:
            holds.refuse(ctx(), referral, form.reason.data, expected_version=form.version.data)
            went = None
    if went == "conflict":
        flash(_("Referral #%(id)d released: another partner registered the buyer first, so it "
                "waits in the conflict queue.", id=referral.id), "success")
    elif went:
        flash(_("Referral #%(id)d released to the queue.", id=referral.id), "success")
    else:
        flash(_("Referral #%(id)d refused.", id=referral.id), "success")
    return redirect(back)


# --- reveals past the limit: the officer's request, the manager's decision ----------------------

@bp.route("/referrals/<int:referral_id>/reveal-request", methods=["POST"])
@bank_required
def ask_reveal(referral_id: int):
    referral = referrals.get_for(current_user, referral_id)
    form = RevealForm()
    if not form.validate_on_submit():
        raise refused(_("The form has expired. Reload the page and try again."),
                      "bank.referral", referral_id=referral_id)
    with going_back_to("bank.referral", referral_id=referral_id):
        reveals.ask(ctx(), referral, form.reason_code.data, form.reason_text.data)
    flash(_("Your request is with the managers. Once one approves it, you can reveal this "
            "buyer's details once."), "success")
    return redirect(url_for("bank.referral", referral_id=referral_id))


@bp.route("/reveal-requests")
@managers_only
def reveal_requests():
    status = request.args.get("status")
    status = status if status in REVEAL_REQUEST_STATUSES else None
    page = paginate(reveals.requests(status=status, viewer=current_user))
    return render_template("bank/reveal_requests.html", page=page, status=status,
                           form=RevealDecisionForm())


@bp.route("/reveal-requests/<int:request_id>/decide", methods=["POST"])
@managers_only
def decide_reveal(request_id: int):
    ask = reveals.request_for(request_id, current_user)
    form = RevealDecisionForm()
    if not form.validate_on_submit():
        raise refused(_("Choose to approve or refuse the request."), "bank.reveal_requests")
    approve = form.decision.data == "approve"
    with going_back_to("bank.reveal_requests"):
        reveals.decide(ctx(), ask, approve=approve, note=form.note.data)
    flash(_("Request approved: %(name)s may reveal this buyer's details once.",
            name=ask.requested_by.name) if approve else _("Request refused."), "success")
    return redirect(url_for("bank.reveal_requests"))


# --- reveals per person ------------------------------------------------------------------------

def _day(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name) or "")
    except ValueError:
        return None


@bp.route("/reveals")
@managers_only
def reveal_log():
    user_id = request.args.get("user", type=int)
    reason = request.args.get("reason")
    filters = reveals.LogFilters(user_id=user_id, since=_day("since"), until=_day("until"),
                                 reason_code=reason if reason in REVEAL_REASONS else None)
    page = paginate(reveals.log(filters, current_user))
    return render_template("bank/reveals.html", page=page, filters=filters,
                           per_person=reveals.per_person(viewer=current_user),
                           people=reveals.people(),
                           limit=reveals.limit())
