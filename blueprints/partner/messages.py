"""The partner's side of the messages on a referral: the thread on the referral page
(templates/partner/_messages.html), posting to it, marking it read, the list of threads, and the
menu's count of unread messages. Another organisation's referral is not found (404).

Added to the partner blueprint (imported by register_blueprints).
"""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from blueprints import going_back_to, paginate, shown_again
from models import Referral
from portal.security import ctx, partner_required
from portal.services import disclosure, messages

from .routes import _referral, _render_referral, bp


@bp.app_context_processor
def _message_helpers():
    def unread_messages() -> int:
        if not current_user.is_authenticated or not current_user.is_partner:
            return 0
        return messages.unread_count(current_user._get_current_object())

    return {"unread_messages_partner": unread_messages}


@bp.app_template_global()
def partner_thread(referral: Referral) -> dict:
    """What the referral page's thread shows: the messages as a partner may read them, the
    named people at the bank, and a refused message's text and errors to show again."""
    user = current_user._get_current_object()
    return {
        "messages": disclosure.messages(messages.thread(referral), referral.org_id),
        "unread": messages.unread_on(user, referral),
        "contact": disclosure.staff_contact(messages.bank_contact(referral)),
        "manager": disclosure.staff_contact(messages.channel_manager(referral)),
        "draft": g.get("message_draft", ""),
        "errors": g.get("message_errors", {}),
        "max_length": messages.MAX_LENGTH,
    }


@bp.route("/referrals/<int:referral_id>/messages", methods=["POST"])
@partner_required
def post_message(referral_id: int):
    referral = _referral(referral_id)
    body = request.form.get("body", "")
    with going_back_to(".referral", referral_id=referral.id), shown_again() as refusal:
        messages.post(ctx(), referral, body)
        flash(_("Message sent to the bank."), "success")
        return redirect(url_for(".referral", referral_id=referral.id, _anchor="messages"))
    # Shown again on the referral page with what was typed, nothing lost.
    g.message_draft, g.message_errors = body, refusal.fields
    return _render_referral(referral, status=422)


@bp.route("/referrals/<int:referral_id>/messages/read", methods=["POST"])
@partner_required
def read_messages(referral_id: int):
    referral = _referral(referral_id)
    messages.mark_read(ctx(), referral)
    return redirect(url_for(".referral", referral_id=referral.id, _anchor="messages"))


@bp.route("/messages")
@partner_required
def messages_page():
    unread_only = request.args.get("unread") == "1"
    user = current_user._get_current_object()
    page = paginate(messages.inbox(user, unread_only=unread_only))
    rows = [disclosure.message(m, user.org_id) | {"referral": m.referral} for m in page.items]
    return render_template("messages/partner_inbox.html", page=page, rows=rows,
                           unread_only=unread_only,
                           unread=messages.unread_by_referral(
                               user, [m.referral_id for m in page.items]))
