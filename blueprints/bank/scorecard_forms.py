"""Forms of the scorecard, follow-up and contact pages (bank face)."""

import re
from datetime import datetime

from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, HiddenField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.i18n import lazy_gettext as _l
from portal.services.followups import CONTACT_KINDS, NOTE_KINDS, OUTCOMES


class BankDateTime(DateTimeLocalField):
    """A date and time typed on the bank's wall clock (naive here; the view stores it with
    bank_time.typed_local). A date without a time is refused with its own message, so the
    person knows which field to fix."""

    FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, format=self.FORMATS[0], **kwargs)

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        text = valuelist[0].strip()
        for fmt in self.FORMATS:
            try:
                self.data = datetime.strptime(text, fmt)
                return
            except ValueError:
                continue
        self.data = None
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(_l("Give the time as well as the date (for example 10:00)."))
        raise ValueError(_l("Give a date and time such as 2026-03-02 10:00."))


def first_problem(form, default):
    """The message to show for a refused form: a date-time's own message before the generic."""
    for name in ("at", "next_action_at"):
        field = getattr(form, name, None)
        if field is not None and field.errors:
            return field.errors[0]
    return default


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
    next_action_at = BankDateTime(_l("Next action"), validators=[Optional()])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])


class AssignForm(FlaskForm):
    assigned_to = SelectField(_l("Assign to"), validators=[Optional()], validate_choice=False)
    next_action_at = BankDateTime(_l("Next action"), validators=[Optional()])


class NoteForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=list(NOTE_KINDS.items()))
    body = TextAreaField(_l("What happened"), validators=[DataRequired(), Length(max=4000)])
    next_action_at = BankDateTime(_l("Next action"), validators=[Optional()])


class CloseForm(FlaskForm):
    outcome = SelectField(_l("Outcome"), choices=list(OUTCOMES.items()))
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])


class ContactForm(FlaskForm):
    org_id = SelectField(_l("Partner"), validators=[DataRequired()], validate_choice=False)
    kind = SelectField(_l("Kind"), choices=list(CONTACT_KINDS.items()))
    at = BankDateTime(_l("When"), validators=[Optional()])
    summary = TextAreaField(_l("Summary"), validators=[DataRequired(), Length(max=4000)])
