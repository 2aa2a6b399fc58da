"""Forms of the officers' work queue: assignment and saved filters."""

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from portal.i18n import lazy_gettext as _l


class TakeForm(FlaskForm):
    """Take or give back a referral; `next` is the queue page (with its filters) to return to."""

    next = HiddenField()


class AssignForm(FlaskForm):
    officer = SelectField(_l("Officer"), validate_choice=False,
                          validators=[DataRequired(_l("Choose an active credit officer."))])
    # The officer the lead's page showed: the service refuses if that changed meanwhile.
    seen = HiddenField()
    next = HiddenField()

    def officer_id(self) -> int | None:
        raw = self.officer.data or ""
        return int(raw) if raw.isdigit() and len(raw) <= 9 else None

    def seen_id(self) -> int | None:
        raw = self.seen.data or ""
        return int(raw) if raw.isdigit() and len(raw) <= 9 else None


class SaveFilterForm(FlaskForm):
    # The length is the service's (it says so in the bank's words); this stops a flood.
    name = StringField(_l("Name of this filter"),
                       validators=[DataRequired(_l("Give the filter a name.")), Length(max=200)])
