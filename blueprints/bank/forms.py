from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import AnyOf, DataRequired, InputRequired, Length, Optional, ValidationError
from wtforms.widgets import HiddenInput

from portal.i18n import lazy_gettext as _l
from portal.labels import DECLINE_REASONS, DOCUMENT_KINDS, REVEAL_REASONS


class ActionForm(FlaskForm):
    """An empty form: CSRF protection for POST-only buttons."""


class RevealForm(FlaskForm):
    """Why the buyer's full details are needed; the service checks the reason (so that a
    reveal refused for want of one is audited too)."""

    reason_code = SelectField(_l("Why do you need the full details?"),
                              choices=[("", "—")] + list(REVEAL_REASONS.items()),
                              validate_choice=False)
    # No length check here: a refusal of the form would not be audited; the service keeps 500.
    reason_text = TextAreaField(_l("In your words"))


class RevealDecisionForm(FlaskForm):
    decision = HiddenField(validators=[AnyOf(["approve", "refuse"])])
    note = TextAreaField(_l("Note"))  # the service keeps the first 500 characters


class HeldReviewForm(FlaskForm):
    version = IntegerField(widget=HiddenInput(), validators=[InputRequired()])
    decision = HiddenField(validators=[AnyOf(["release", "refuse"])])
    reason = TextAreaField(_l("Written reason"),
                           validators=[DataRequired(_l("Write the reason for this decision.")),
                                       Length(max=2000)])
    next = HiddenField()


class ReferralFilterForm(FlaskForm):
    """Filters of the queue and the referral list; read from the query string, no CSRF."""

    class Meta:
        csrf = False

    q = StringField(_l("Search"), validators=[Optional(), Length(max=100)], render_kw={
        "placeholder": _l("Buyer name (its start), reference, number, partner, or a whole ID "
                          "or mobile")})
    status = SelectField(_l("Status"), validators=[Optional()], validate_choice=False)
    product = SelectField(_l("Product"), validators=[Optional()], validate_choice=False)
    # A partner's code, typed (a script offers matching partners as one types): the bar never
    # lists every partner.
    org = StringField(_l("Partner code"), validators=[Optional(), Length(max=40)])
    partner_type = SelectField(_l("Partner type"), validators=[Optional()], validate_choice=False)
    customer_class = SelectField(_l("Customer class"), validators=[Optional()],
                                 choices=[("", _l("Any class")), ("1", _l("Class 1")),
                                          ("2", _l("Class 2")), ("3", _l("Class 3"))])

    def value(self, name: str):
        data = self[name].data
        return data or None

    def customer_class_value(self) -> int | None:
        raw = self.customer_class.data or ""
        return int(raw) if raw in ("1", "2", "3") else None


def _version_field():
    return IntegerField(widget=HiddenInput(), validators=[InputRequired()])


class TransitionForm(FlaskForm):
    to = HiddenField(validators=[DataRequired()])
    version = _version_field()
    # No Optional(): it would stop the chain before the decline checks below.
    note = TextAreaField(_l("Internal note"), validators=[Length(max=2000)])
    partner_note = TextAreaField(_l("Message to the partner"),
                                 validators=[Optional(), Length(max=2000)])
    reason_code = SelectField(_l("Reason category"),
                              choices=[("", "—")] + list(DECLINE_REASONS.items()),
                              validate_choice=False)  # the service checks the code
    # The terms an approval, a contract or a disbursement records: carried as typed, checked
    # by the service (services/decisions.py), which names the field of each refusal.
    amount = StringField(_l("Amount (CNY)"))
    term_months = StringField(_l("Term (months)"))
    rate_percent = StringField(_l("Annual rate (%)"))
    conditions = TextAreaField(_l("Conditions"))
    number = StringField(_l("Number"))
    date = StringField(_l("Date"))

    # Which fields each move records (the service's names for them).
    TERMS = {"approved": ("amount", "term_months", "rate_percent", "conditions"),
             "contract_signed": ("number", "amount", "date"),
             "disbursed": ("amount", "date", "number")}

    def terms(self) -> dict | None:
        """The terms this move records, as typed; None for a move that records none."""
        names = self.TERMS.get(self.to.data or "")
        return {name: self[name].data for name in names} if names else None

    def validate_note(self, field):
        if self.to.data == "declined" and not (field.data or "").strip():
            raise ValidationError(_l("Write an internal note for the decline."))

    def validate_reason_code(self, field):
        if self.to.data == "declined" and not field.data:
            raise ValidationError(_l("Choose a reason category."))


class RequestDocumentsForm(FlaskForm):
    version = _version_field()
    # Not required here: an item in the officer's words is enough (the service checks that
    # at least one item is asked for).
    kinds = SelectMultipleField(_l("Documents to request"), choices=list(DOCUMENT_KINDS.items()),
                                validators=[Optional()])
    # Items on no list, in the officer's words: one per line.
    items = TextAreaField(_l("Anything else, in your words (one item per line)"),
                          validators=[Optional(), Length(max=2000)])
    note = TextAreaField(_l("Note to the partner"),
                         validators=[DataRequired(_l("Say what the partner should provide.")),
                                     Length(max=2000)])
    internal_note = TextAreaField(_l("Internal note"), validators=[Optional(), Length(max=2000)])

    def item_labels(self) -> list[str]:
        return [line for line in (self.items.data or "").splitlines() if line.strip()]


class ReviewDocumentForm(FlaskForm):
    decision = HiddenField(validators=[AnyOf(["accept", "reject"])])
    reason = TextAreaField(_l("Reason for rejection"), validators=[Optional(), Length(max=2000)])
    note = TextAreaField(_l("Internal note"), validators=[Optional(), Length(max=2000)])


class ResolveConflictForm(FlaskForm):
    version = _version_field()
    decision = HiddenField(validators=[AnyOf(["grant", "reject"])])
    reason = TextAreaField(_l("Written reason"),
                           validators=[DataRequired(_l("Write the reason for this decision.")),
                                       Length(max=2000)])
    # Settling who keeps a buyer is not undone by another click: the box must be ticked, so the
    # confirmation holds without JavaScript (static/portal.js asks as well, data-confirm).
    confirm = BooleanField(_l("I have compared both registrations and confirm this decision."),
                           validators=[DataRequired(_l("Tick the box to confirm the decision."))])
    next = HiddenField()
