"""Forms of the scorecard, follow-up and contact pages (bank face)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, HiddenField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.services.followups import CONTACT_KINDS, NOTE_KINDS, OUTCOMES


class CockpitFilterForm(FlaskForm):
    """The ranking's filters, read from the query string (no CSRF)."""

    class Meta:
        csrf = False

    kind = SelectField(_l("Partner type"), validators=[Optional()], validate_choice=False)
    branch = SelectField(_l("Branch"), validators=[Optional()], validate_choice=False)
    manager = SelectField(_l("Channel manager"), validators=[Optional()], validate_choice=False)
    tier = SelectField(_l("Tier"), validators=[Optional()], validate_choice=False)


class ActionForm(FlaskForm):
    """CSRF only: POST buttons."""


class AddFollowUpForm(FlaskForm):
    referral_id = HiddenField(validators=[DataRequired()])
    assigned_to = SelectField(_l("Assign to"), validators=[Optional()], validate_choice=False)
    next_action_at = DateTimeLocalField(_l("Next action"), validators=[Optional()],
                                        format="%Y-%m-%dT%H:%M")
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])


class AssignForm(FlaskForm):
    assigned_to = SelectField(_l("Assign to"), validators=[Optional()], validate_choice=False)
    next_action_at = DateTimeLocalField(_l("Next action"), validators=[Optional()],
                                        format="%Y-%m-%dT%H:%M")


class NoteForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=list(NOTE_KINDS.items()))
    body = TextAreaField(_l("What happened"), validators=[DataRequired(), Length(max=4000)])
    next_action_at = DateTimeLocalField(_l("Next action"), validators=[Optional()],
                                        format="%Y-%m-%dT%H:%M")


class CloseForm(FlaskForm):
    outcome = SelectField(_l("Outcome"), choices=list(OUTCOMES.items()))
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])


class ContactForm(FlaskForm):
    org_id = SelectField(_l("Partner"), validators=[DataRequired()], validate_choice=False)
    kind = SelectField(_l("Kind"), choices=list(CONTACT_KINDS.items()))
    at = DateTimeLocalField(_l("When"), validators=[Optional()], format="%Y-%m-%dT%H:%M")
    summary = TextAreaField(_l("Summary"), validators=[DataRequired(), Length(max=4000)])
