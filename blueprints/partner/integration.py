"""Partner pages for integration: API keys and webhooks (partner administrators), the webhook
delivery log with resend, and notifications (every partner user).

Added to the partner blueprint (imported by register_blueprints). Another organisation's key,
endpoint, delivery or notification is simply not found (404).
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectField, SelectMultipleField, StringField, SubmitField, widgets
from wtforms.validators import DataRequired, Length, Optional

from blueprints import going_back_to, paginate
from models import WEBHOOK_EVENT_TYPES, User
from portal import links
from portal.extensions import db
from portal.i18n import lazy_gettext as _l
from portal.security import ctx, partner_required, roles_required, safe_next
from portal.services import api_keys, notifications, webhooks
from portal.services.errors import NotFound, ValidationFailed

from .routes import bp

partner_admin_required = roles_required("partner_admin")

EVENT_LABELS = {
    "referral.status_changed": _l("A referral's status changed"),
    "referral.documents_requested": _l("The bank asked for documents"),
    "agreement.issued": _l("An agreement was issued"),
    "referral.message": _l("The bank wrote a message on a referral"),
    "lead.received": _l("The bank referred a customer to you"),
}
DELIVERY_STATUSES = {
    "pending": _l("Pending"),
    "delivered": _l("Delivered"),
    "failed": _l("Failed"),
}


class ApiKeyForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)],
                       description=_l("What the key is for, e.g. “CRM production”."))
    user_id = SelectField(_l("Acts as"), coerce=int,
                          description=_l("The key can do what this user can do."))
    submit = SubmitField(_l("Create key"))


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class WebhookForm(FlaskForm):
    url = StringField(_l("Endpoint URL"), validators=[DataRequired(), Length(max=500)],
                      description=_l("https:// address of your system that receives events."))
    description = StringField(_l("Description"), validators=[Optional(), Length(max=200)])
    event_types = MultiCheckboxField(_l("Events"))
    submit = SubmitField(_l("Add endpoint"))


def _org_id() -> int:
    return current_user.org_id




# --- API keys ----------------------------------------------------------------------------------

def _key_form(blank: bool = False) -> ApiKeyForm:
    form = ApiKeyForm(formdata=None) if blank else ApiKeyForm()
    users = db.session.scalars(select(User).where(User.org_id == _org_id(),
                                                  User.active.is_(True)).order_by(User.email))
    form.user_id.choices = [(u.id, f"{u.name} <{u.email}>") for u in users]
    if form.user_id.data is None:
        form.user_id.data = current_user.id
    return form


def _render_keys(form=None, errors=None, new_key=None, status=200):
    page = paginate(api_keys.org_keys(_org_id()))
    form = form or _key_form(blank=new_key is not None)
    return render_template("integration/api_keys.html", page=page, form=form,
                           errors=errors or {}, new_key=new_key), status


@bp.route("/api-keys", methods=["GET", "POST"])
@partner_admin_required
def api_keys_page():
    if request.method == "GET":
        return _render_keys()
    form = _key_form()
    if not form.validate_on_submit():
        return _render_keys(form, status=422)
    user = db.session.get(User, form.user_id.data)
    if user is None or user.org_id != _org_id():
        return _render_keys(form, {"user_id": _("Choose a user of your organisation.")}, 422)
    try:
        row, key = api_keys.create(ctx(), user, form.name.data)
    except ValidationFailed as exc:
        return _render_keys(form, {k: str(v) for k, v in exc.fields.items()}, status=422)
    # Shown on this response only: never stored, flashed or sent again.
    return _render_keys(new_key={"row": row, "key": key})


@bp.route("/api-keys/<int:key_id>/revoke", methods=["GET", "POST"])
@partner_admin_required
def revoke_api_key(key_id: int):
    row = api_keys.get_for_org(_org_id(), key_id)
    if request.method == "GET":
        return render_template("integration/api_key_revoke.html", key=row, form=FlaskForm())
    if not FlaskForm().validate_on_submit():
        return redirect(url_for(".revoke_api_key", key_id=key_id))
    with going_back_to(".api_keys_page"):
        api_keys.revoke(ctx(), row)
    flash(_("Key %(prefix)s… (%(name)s) is revoked; calls with it are refused from now on.",
            prefix=row.prefix, name=row.name), "success")
    return redirect(url_for(".api_keys_page"))


# --- webhooks ----------------------------------------------------------------------------------

def _webhook_form(blank: bool = False) -> WebhookForm:
    form = WebhookForm(formdata=None) if blank else WebhookForm()
    form.event_types.choices = [(t, EVENT_LABELS[t]) for t in WEBHOOK_EVENT_TYPES]
    if blank or not form.is_submitted():
        form.event_types.data = list(WEBHOOK_EVENT_TYPES)
    return form


def _render_webhooks(form=None, errors=None, new_secret=None, status=200):
    page = paginate(webhooks.org_endpoints(_org_id()))
    form = form or _webhook_form(blank=new_secret is not None)
    return render_template("integration/webhooks.html", page=page, form=form,
                           errors=errors or {}, new_secret=new_secret,
                           event_labels=EVENT_LABELS), status


@bp.route("/webhooks", methods=["GET", "POST"])
@partner_admin_required
def webhooks_page():
    if request.method == "GET":
        return _render_webhooks()
    form = _webhook_form()
    if not form.validate_on_submit():
        return _render_webhooks(form, status=422)
    try:
        endpoint, secret = webhooks.create_endpoint(
            ctx(), current_user.org, form.url.data, description=form.description.data,
            event_types=form.event_types.data or [])
    except ValidationFailed as exc:
        return _render_webhooks(form, {k: str(v) for k, v in exc.fields.items()}, status=422)
    return _render_webhooks(new_secret={"endpoint": endpoint, "secret": secret})


@bp.route("/webhooks/<int:endpoint_id>/deactivate", methods=["POST"])
@partner_admin_required
def deactivate_webhook(endpoint_id: int):
    endpoint = webhooks.endpoint_for_org(_org_id(), endpoint_id)
    if not FlaskForm().validate_on_submit():
        return redirect(url_for(".webhooks_page"))
    webhooks.deactivate(ctx(), endpoint)
    flash(_("The endpoint %(url)s receives no more events.", url=endpoint.url), "success")
    return redirect(url_for(".webhooks_page"))


@bp.route("/webhooks/deliveries")
@partner_admin_required
def webhook_deliveries():
    endpoint_id = request.args.get("endpoint_id", type=int)
    status = request.args.get("status")
    if status not in DELIVERY_STATUSES:
        status = None
    if endpoint_id is not None:
        try:
            webhooks.endpoint_for_org(_org_id(), endpoint_id)
        except NotFound:
            endpoint_id = None
    page = paginate(webhooks.org_deliveries(_org_id(), endpoint_id=endpoint_id, status=status))
    endpoints = db.session.scalars(webhooks.org_endpoints(_org_id())).all()
    return render_template("integration/deliveries.html", page=page, endpoints=endpoints,
                           endpoint_id=endpoint_id, status=status,
                           statuses=DELIVERY_STATUSES, event_labels=EVENT_LABELS,
                           body_of=lambda d: webhooks.event_body(d.event).decode())


@bp.route("/webhooks/deliveries/<int:delivery_id>/resend", methods=["POST"])
@partner_admin_required
def resend_delivery(delivery_id: int):
    delivery = webhooks.delivery_for_org(_org_id(), delivery_id)
    if not FlaskForm().validate_on_submit():
        return redirect(url_for(".webhook_deliveries"))
    with going_back_to(".webhook_deliveries"):
        webhooks.resend(ctx(), delivery)
    flash(_("Event %(id)s will be sent again to %(url)s.", id=delivery.event_id,
            url=delivery.endpoint.url), "success")
    back = safe_next(request.form.get("next")) or url_for(".webhook_deliveries")
    return redirect(back)


# --- notifications -----------------------------------------------------------------------------

@bp.app_context_processor
def _notification_helpers():
    def unread_notifications() -> int:
        if not current_user.is_authenticated or not current_user.is_partner:
            return 0
        return notifications.unread_count(current_user.id)

    return {"unread_notifications": unread_notifications}


@bp.route("/notifications")
@partner_required
def notifications_page():
    unread_only = request.args.get("unread") == "1"
    page = paginate(notifications.for_user(current_user.id, unread_only=unread_only))
    items = [(n, notifications.render(n)) for n in page.items]
    return render_template("integration/notifications.html", page=page, items=items,
                           unread_only=unread_only, kinds=notifications.KINDS)


@bp.route("/notifications/<int:notification_id>/open")
@partner_required
def open_notification(notification_id: int):
    note = notifications.get_for_user(current_user.id, notification_id)
    notifications.mark_read(note)
    target = safe_next(links.partner_path(notifications.render(note)["subject"]))
    return redirect(target or url_for(".notifications_page"))


@bp.route("/notifications/<int:notification_id>/read", methods=["POST"])
@partner_required
def read_notification(notification_id: int):
    note = notifications.get_for_user(current_user.id, notification_id)
    if FlaskForm().validate_on_submit():
        notifications.mark_read(note)
    return redirect(url_for(".notifications_page"))


@bp.route("/notifications/read-all", methods=["POST"])
@partner_required
def read_all_notifications():
    if FlaskForm().validate_on_submit():
        count = notifications.mark_all_read(current_user.id)
        if count:
            flash(_("%(n)d notifications marked as read.", n=count), "success")
    return redirect(url_for(".notifications_page"))
