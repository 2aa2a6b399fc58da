"""The bank's side of the messages on a referral: the thread on the referral page
(templates/bank/_messages.html), posting to it, marking it read, the list of threads, and the
menu's count of what partners wrote that nobody at the bank has read yet.

Added to the bank blueprint (imported by register_blueprints).
"""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from blueprints import going_back_to, paginate, shown_again
from models import Referral
from portal.security import bank_required, ctx
from portal.services import messages, referrals

from .routes import _render_referral, bp, partner_scope


@bp.app_context_processor
def _message_helpers():
    def unread_messages() -> int:
        if not current_user.is_authenticated or not current_user.is_bank:
            return 0
        return messages.unread_count(current_user._get_current_object())

    return {"unread_messages_bank": unread_messages}


@bp.app_template_global()
def bank_thread(referral: Referral) -> dict:
    """What the referral page's thread shows, and a refused message to show again."""
    user = current_user._get_current_object()
    return {
        "messages": messages.thread(referral),
        "unread": messages.unread_on(user, referral),
        "contact": messages.bank_contact(referral),
        "manager": messages.channel_manager(referral),
        "draft": g.get("message_draft", ""),
        "errors": g.get("message_errors", {}),
        "max_length": messages.MAX_LENGTH,
    }


@bp.route("/referrals/<int:referral_id>/messages", methods=["POST"])
@bank_required
def post_message(referral_id: int):
    referral = referrals.get_for(current_user, referral_id)
    body = request.form.get("body", "")
    with going_back_to(".referral", referral_id=referral.id), shown_again() as refusal:
        messages.post(ctx(), referral, body)
        flash(_("Message sent to the partner."), "success")
        return redirect(url_for(".referral", referral_id=referral.id, _anchor="messages"))
    g.message_draft, g.message_errors = body, refusal.fields
    return _render_referral(referral, status=422)


@bp.route("/referrals/<int:referral_id>/messages/read", methods=["POST"])
@bank_required
def read_messages(referral_id: int):
    referral = referrals.get_for(current_user, referral_id)
    messages.mark_read(ctx(), referral)
    return redirect(url_for(".referral", referral_id=referral.id, _anchor="messages"))


@bp.route("/messages")
@bank_required
def messages_page():
    unread_only = request.args.get("unread") == "1"
    user = current_user._get_current_object()
    # Channel managers and admins choose whose partners (officers work every partner's).
    scope = partner_scope() if user.role in ("channel_manager", "admin") else None
    page = paginate(messages.inbox(user, unread_only=unread_only, my_partners=scope == "mine"))
    return render_template("messages/bank_inbox.html", page=page, unread_only=unread_only,
                           scope=scope,
                           unread=messages.unread_by_referral(
                               user, [m.referral_id for m in page.items]))
