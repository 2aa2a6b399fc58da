"""Forms of the partner pages. The new-referral form is built from the intake schema
(services/referral_intake.py), whose rules the referral service applies; the form only carries what
the user typed (so nothing is lost when the service refuses it)."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, EmailField, HiddenField, SelectField, StringField, SubmitField
from wtforms.validators import Length

from portal.i18n import lazy_gettext as _l
from portal.services.referral_intake import form_fields


class Mandatory:
    """Marks a field as required (the asterisk) and leaves the check to the service."""

    field_flags = {"required": True}

    def __call__(self, form, field):
        return None


ACCEPT = ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"
# The web form's widget for each kind of intake field (referral_intake.IntakeField.kind).
WIDGETS = {"product": SelectField, "industry": SelectField, "consent": BooleanField,
           "site": SelectField}


def _intake_field(face):
    widget = WIDGETS.get(face.kind, StringField)
    options = {"validators": [Mandatory()] if face.required else []}
    if widget is SelectField:
        options["validate_choice"] = False  # the choices are the service's to check
    if face.render_kw:
        options["render_kw"] = dict(face.render_kw)
    return widget(face.label, **options)


class ReferralForm(FlaskForm):
    """The new-referral form: one field for each field of the intake schema the partner types
    in, with its label and asterisk from there (referral_intake.form_fields)."""

    # The keys of referrals.validate_intake, which are also the names of the fields.
    INTAKE_FIELDS = tuple(name for name, face in form_fields().items() if face.kind != "consent")

    def intake_data(self, notice_version: str) -> dict:
        data = {name: (self[name].data or "").strip() for name in self.INTAKE_FIELDS}
        data["consent"] = bool(self.consent.data)
        data["consent_notice_version"] = notice_version
        return data


for _name, _face in form_fields().items():
    setattr(ReferralForm, _name, _intake_field(_face))
ReferralForm.submit = SubmitField(_l("Submit referral"))


class FilterForm(FlaskForm):
    """The list's search and filters: a GET form, so no CSRF token."""

    class Meta:
        csrf = False

    q = StringField(_l("Search"), render_kw={
        "placeholder": _l("Buyer name (its start), your reference, number, or a whole ID or "
                          "mobile"),
        "maxlength": 100})
    status = SelectField(_l("Status"), validate_choice=False)
    product = SelectField(_l("Product"), validate_choice=False)


class UploadForm(FlaskForm):
    kind = SelectField(_l("Document type"), validators=[Mandatory()], validate_choice=False)
    file = FileField(_l("File (PDF, JPEG or PNG)"), validators=[Mandatory()],
                     render_kw={"accept": ACCEPT})
    submit = SubmitField(_l("Upload"))


class ItemUploadForm(FlaskForm):
    """Files for one item the bank asked for: chosen files and photos taken on the spot, all
    under the name `files` (the template draws the inputs; the view reads every one)."""

    replace = BooleanField(_l("These files replace the ones I sent before for this item"))


class UserForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[Mandatory(), Length(max=200)])
    name = StringField(_l("Name"), validators=[Length(max=100)])
    role = SelectField(_l("Role"), validate_choice=False)
    submit = SubmitField(_l("Create user"))


class GroupUploadForm(FlaskForm):
    """A file of buyers (services/group_referrals.py), checked first; the checked file comes
    back in `payload` when the partner confirms, so nothing is uploaded twice."""

    file = FileField(_l("CSV file of buyers"), render_kw={"accept": ".csv,text/csv"})
    # The site (project, showroom, office) the whole group buys at; every row names it.
    site = SelectField(_l("Site"), validate_choice=False)
    payload = HiddenField()
    check = SubmitField(_l("Check the file"))
    confirm = SubmitField(_l("Submit the accepted buyers"))


class RefusedRowsForm(FlaskForm):
    """The refused rows of a checked file, sent back to be downloaded as CSV."""

    rows = HiddenField()
