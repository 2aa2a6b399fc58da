from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, SelectField, StringField
from wtforms.validators import Email, Length, Optional

from portal.i18n import lazy_gettext as _l
from portal.labels import DISTRIBUTION_MODELS, ORG_STATUSES, PARTNER_TYPES, ROLES

PARTNER_KINDS = [(k, v) for k, v in PARTNER_TYPES.items() if k != "bank"]


def _optional_int(value):
    if value in (None, "", "None"):
        return None
    return int(value)


class ActionForm(FlaskForm):
    """An empty form: CSRF protection for POST-only buttons."""


class _Filters(FlaskForm):
    """Filters read from the query string: no CSRF token."""

    class Meta:
        csrf = False


class OrgFilterForm(_Filters):
    q = StringField(_l("Code or name"), validators=[Optional(), Length(max=100)])
    kind = SelectField(_l("Partner type"), choices=[("", "—")] + PARTNER_KINDS,
                       validators=[Optional()])
    status = SelectField(_l("Status"), choices=[("", "—")] + list(ORG_STATUSES.items()),
                         validators=[Optional()])


class UserFilterForm(_Filters):
    q = StringField(_l("E-mail or name"), validators=[Optional(), Length(max=100)])
    role = SelectField(_l("Role"), choices=[("", "—")] + list(ROLES.items()),
                       validators=[Optional()])
    org = SelectField(_l("Organisation"), validators=[Optional()], validate_choice=False)


class AuditFilterForm(_Filters):
    action = SelectField(_l("Action"), validators=[Optional()], validate_choice=False)
    actor = StringField(_l("Actor e-mail"), validators=[Optional(), Length(max=200)])
    target_type = SelectField(_l("Target type"), validators=[Optional()], validate_choice=False)
    target_id = StringField(_l("Target id"), validators=[Optional(), Length(max=64)])
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])


class _OrgFields(FlaskForm):
    name = StringField(_l("Name"), validators=[Length(max=200)])
    status = SelectField(_l("Status"), choices=list(ORG_STATUSES.items()), default="active")
    branch = SelectField(_l("Bank branch"), validators=[Optional()], validate_choice=False,
                         description=_l("The branch that works this partner; its channel "
                                        "manager must work in that branch or above it."))
    channel_manager_id = SelectField(_l("Channel manager"), coerce=_optional_int,
                                     validate_choice=False)
    contact_name = StringField(_l("Contact name"), validators=[Optional(), Length(max=100)])
    contact_phone = StringField(_l("Contact phone"), validators=[Optional(), Length(max=40)])
    contact_email = EmailField(_l("Contact e-mail"),
                               validators=[Optional(), Email(), Length(max=200)])


class OrgCreateForm(_OrgFields):
    code = StringField(_l("Code"), validators=[Length(max=32)],
                       description=_l("2-32 capital letters, digits or underscores."))
    kind = SelectField(_l("Partner type"), choices=PARTNER_KINDS)


class OrgEditForm(_OrgFields):
    confirm_status = BooleanField(_l("Yes, change this partner's status"))


class UserCreateForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[Length(max=200)])
    name = StringField(_l("Name"), validators=[Optional(), Length(max=100)])
    role = SelectField(_l("Role"), choices=list(ROLES.items()))
    org_id = SelectField(_l("Organisation (partner roles)"), coerce=_optional_int,
                         validate_choice=False)
    branch = SelectField(_l("Branch (bank roles)"), validators=[Optional()],
                         validate_choice=False)


MODEL_CHOICES = [("", "—")] + list(DISTRIBUTION_MODELS.items())


class BranchForm(FlaskForm):
    code = StringField(_l("Code"), validators=[Length(max=32)],
                       description=_l("2-32 capital letters, digits or underscores."))
    name = StringField(_l("Name"), validators=[Length(max=200)])
    parent = SelectField(_l("Belongs to"), validators=[Optional()], validate_choice=False)
    model = SelectField(_l("Distribution model"), choices=MODEL_CHOICES,
                        validators=[Optional()])


class BranchEditForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Length(max=200)])
    parent = SelectField(_l("Belongs to"), validators=[Optional()], validate_choice=False)
    model = SelectField(_l("Distribution model"), choices=MODEL_CHOICES,
                        validators=[Optional()])


class UserBranchForm(FlaskForm):
    branch = SelectField(_l("Branch"), validators=[Optional()], validate_choice=False)
