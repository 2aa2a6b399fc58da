"""The admin face: organisations, users and the audit log."""

from datetime import timedelta

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from blueprints import going_back_to, paginate, shown_again
from blueprints.auth.account import send_password_link
from models import PARTNER_ROLES, User, utcnow
from portal.bank_time import day_start
from portal.security import ctx, fresh_login_required, roles_required
from portal.services import accounts, admin_views, branches, partners, passwords

from .forms import (
    ActionForm,
    AuditFilterForm,
    OrgCreateForm,
    OrgEditForm,
    OrgFilterForm,
    UserCreateForm,
    UserFilterForm,
)

bp = Blueprint("admin", __name__)

admin_required = roles_required("admin")
# Statuses that cut a partner off: changing to one needs an explicit confirmation.
CUTTING_STATUSES = ("suspended", "terminated")




def _manager_choices():
    return [("", _("No channel manager"))] + [
        (u.id, f"{u.name} <{u.email}>") for u in admin_views.channel_managers()]


def _branch_choices():
    return branches.choices(current_user, blank=_("The province (whole bank)"))


def _org_choices(blank: str):
    return [("", blank)] + [(o.id, f"{o.name} ({o.code})")
                            for o in partners.partner_orgs(current_user)]


@bp.route("/")
@admin_required
def dashboard():
    return render_template("admin/dashboard.html", data=admin_views.dashboard(viewer=current_user),
                           compact_json=admin_views.compact_json)


# --- organisations ------------------------------------------------------------------------

@bp.route("/orgs")
@admin_required
def orgs():
    form = OrgFilterForm(formdata=request.args)
    form.validate()
    page = paginate(admin_views.org_search(q=form.q.data, kind=form.kind.data or None,
                                            status=form.status.data or None,
                                            viewer=current_user))
    return render_template("admin/orgs.html", form=form, page=page)


def _org_errors(fields: dict) -> dict:
    """The service's field names, mapped onto the form's."""
    return {("channel_manager_id" if k == "manager" else k): str(v) for k, v in fields.items()}


@bp.route("/orgs/new", methods=["GET", "POST"])
@admin_required
def new_org():
    form = OrgCreateForm()
    form.channel_manager_id.choices = _manager_choices()
    form.branch.choices = _branch_choices()
    errors, status = {}, 200
    if request.method == "POST":
        if form.validate_on_submit():
            managers = {u.id: u.email for u in admin_views.channel_managers()}
            with shown_again() as refusal:
                org = accounts.create_org(
                    ctx(), code=form.code.data, name=form.name.data, kind=form.kind.data,
                    status=form.status.data, branch=form.branch.data or None,
                    manager_email=managers.get(form.channel_manager_id.data, "")
                    if form.channel_manager_id.data else None,
                    contact_name=form.contact_name.data, contact_phone=form.contact_phone.data,
                    contact_email=form.contact_email.data)
                flash(_("Organisation %(code)s created.", code=org.code), "success")
                return redirect(url_for("admin.edit_org", org_id=org.id))
            errors = _org_errors(refusal.error.fields)
        status = 422
    return render_template("admin/org_form.html", form=form, errors=errors, org=None), status


@bp.route("/orgs/<int:org_id>", methods=["GET", "POST"])
@admin_required
def edit_org(org_id: int):
    org = partners.partner_org(org_id, current_user)
    if org is None:
        abort(404)
    form = OrgEditForm(obj=org)
    form.channel_manager_id.choices = _manager_choices()
    form.branch.choices = _branch_choices()
    if request.method == "GET":
        form.branch.data = org.branch.code if org.branch else ""
    errors, status = {}, 200
    if request.method == "POST":
        if form.validate_on_submit():
            cutting = form.status.data in CUTTING_STATUSES and form.status.data != org.status
            if cutting and not form.confirm_status.data:
                errors = {"confirm_status": _("Tick the box to confirm: a suspended or "
                                              "terminated partner loses access.")}
            else:
                with going_back_to("admin.orgs"), shown_again() as refusal:
                    accounts.update_org(
                        ctx(), org, name=form.name.data, status=form.status.data,
                        branch=form.branch.data or None,
                        channel_manager_id=form.channel_manager_id.data,
                        contact_name=form.contact_name.data,
                        contact_phone=form.contact_phone.data,
                        contact_email=form.contact_email.data)
                    flash(_("Organisation %(code)s saved.", code=org.code), "success")
                    return redirect(url_for("admin.edit_org", org_id=org.id))
                errors = _org_errors(refusal.error.fields)
        status = 422
    return render_template("admin/org_form.html", form=form, errors=errors, org=org,
                           users=admin_views.org_users(org),
                           cutting_statuses=CUTTING_STATUSES, action_form=ActionForm()), status


# --- users --------------------------------------------------------------------------------

def _render_users(create_form, errors=None, status=200):
    filters = UserFilterForm(formdata=request.args)
    filters.org.choices = [(str(k), v) for k, v in _org_choices("—")]
    filters.validate()
    org_id = int(filters.org.data) if (filters.org.data or "").isdigit() else None
    page = paginate(admin_views.user_search(q=filters.q.data, role=filters.role.data or None,
                                             org_id=org_id, viewer=current_user))
    return render_template("admin/users.html", filters=filters, page=page, form=create_form,
                           errors=errors or {}, action_form=ActionForm(), now=utcnow(),
                           mail=passwords.mail_configured()), status


@bp.route("/users", methods=["GET", "POST"])
@admin_required
@fresh_login_required(methods=("POST",))
def users():
    form = UserCreateForm()
    form.org_id.choices = _org_choices(_("— (bank roles)"))
    form.branch.choices = _branch_choices()
    if request.method == "GET":
        return _render_users(form)
    if not form.validate_on_submit():
        return _render_users(form, status=422)
    org = None
    if form.role.data in PARTNER_ROLES and form.org_id.data:
        org = partners.partner_org(form.org_id.data, current_user)
    with shown_again() as refusal:
        # No password is made for anyone to see: the user chooses one through a link by e-mail,
        # or gets a one-time password from the CLI.
        user, _none = accounts.create_user(
            ctx(), email=form.email.data, role=form.role.data, org=org, name=form.name.data,
            one_time=False,
            branch=(form.branch.data or None) if form.role.data not in PARTNER_ROLES else None)
        with going_back_to("admin.users"):
            sent = send_password_link(user, invitation=True)
        flash(_("User %(email)s created. A link to choose a password was sent to them.",
                email=user.email) if sent else
              _("User %(email)s created. E-mail is not configured: give them a one-time password "
                "at the server with: flask --app wsgi users reset-password --email %(email)s",
                email=user.email), "success")
        return redirect(url_for("admin.users"))
    fields = {("org_id" if k == "org" else k): v for k, v in refusal.fields.items()}
    return _render_users(form, errors=fields, status=422)


def _user(user_id: int) -> User:
    user = admin_views.visible_user(user_id, current_user)
    if user is None:
        abort(404)
    return user


def _user_action(user_id: int, action):
    """Run `action(user)`; a refusal goes back to the user list. Returns (result, user)."""
    user = _user(user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    with going_back_to("admin.users"):
        return action(user), user


@bp.route("/users/<int:user_id>/deactivate", methods=["POST"])
@admin_required
@fresh_login_required
def deactivate_user(user_id: int):
    _result, user = _user_action(user_id, lambda u: accounts.set_user_active(ctx(), u, False))
    flash(_("%(email)s is deactivated and logged out everywhere.", email=user.email), "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<int:user_id>/activate", methods=["POST"])
@admin_required
@fresh_login_required
def activate_user(user_id: int):
    _result, user = _user_action(user_id, lambda u: accounts.set_user_active(ctx(), u, True))
    flash(_("%(email)s can log in again.", email=user.email), "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<int:user_id>/reset-password", methods=["POST"])
@admin_required
@fresh_login_required
def reset_password(user_id: int):
    _result, user = _user_action(user_id, lambda u: send_password_link(u))
    flash(_("A link to choose a new password was sent to %(email)s. Their old password and "
            "sessions no longer work.", email=user.email), "success")
    return redirect(url_for("admin.users"))


# --- audit log ------------------------------------------------------------------------------

@bp.route("/audit")
@admin_required
def audit():
    form = AuditFilterForm(formdata=request.args)
    form.action.choices = [("", "—")] + [(a, a) for a in admin_views.audit_actions()]
    form.target_type.choices = [("", "—")] + [(t, t) for t in admin_views.audit_target_types()]
    chain_state = admin_views.audit_chain_state()
    form.validate()
    since = day_start(form.date_from.data) if form.date_from.data else None
    until = (day_start(form.date_to.data + timedelta(days=1)) if form.date_to.data else None)
    page = paginate(admin_views.audit_search(
        action=form.action.data or None, actor_email=form.actor.data,
        target_type=form.target_type.data or None, target_id=form.target_id.data,
        since=since, until=until), seek=True)
    return render_template("admin/audit.html", form=form, page=page, chain=chain_state,
                           compact_json=admin_views.compact_json, me=current_user)
