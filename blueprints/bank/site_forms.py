"""Forms of a partner's sites (the bank's side). They carry what was typed; the site service
(services/sites.py, its SiteIn schema) checks it, so nothing typed is lost on a refusal."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import Length, Optional

from models import WEEKDAYS
from portal.i18n import lazy_gettext as _l
from portal.labels import SITE_KINDS


class Mandatory:
    """The asterisk; the service decides."""

    field_flags = {"required": True}

    def __call__(self, form, field):
        return None


class SiteForm(FlaskForm):
    kind = SelectField(_l("Kind of site"), choices=[("", "—"), *SITE_KINDS.items()],
                       validators=[Mandatory()], validate_choice=False)
    code = StringField(_l("Code"), validators=[Mandatory()],
                       description=_l("2-32 capital letters, digits, hyphens or underscores, "
                                      "starting with a letter; unique within the partner. "
                                      "API submissions and imports name the site by it."),
                       render_kw={"maxlength": 32, "autocomplete": "off"})
    name = StringField(_l("Name"), validators=[Mandatory()], render_kw={"maxlength": 200})
    address = StringField(_l("Address"), render_kw={"maxlength": 300})
    presale_permit = StringField(_l("Pre-sale permit number (projects)"),
                                 render_kw={"maxlength": 64})
    quota_amount = StringField(_l("Cooperation quota (CNY)"),
                               description=_l("Approved and disbursed loans through the site "
                                              "count against it; empty: no quota."),
                               render_kw={"inputmode": "decimal", "autocomplete": "off"})
    staged_guarantee = BooleanField(_l("The developer guarantees the mortgages until the "
                                       "title is transferred (staged guarantee)"))
    guarantee_contract_number = StringField(_l("Guarantee contract number"),
                                            render_kw={"maxlength": 64})
    guarantee_expected_end = StringField(_l("Guarantee expected to end on"),
                                         description=_l("The expected delivery of the "
                                                        "property certificates, if known."),
                                         render_kw={"type": "date"})
    active = BooleanField(_l("Active (offered to the partner's users on new referrals)"),
                          default=True)

    def site_data(self) -> dict:
        return {name: self[name].data for name in (
            "kind", "code", "name", "address", "presale_permit", "quota_amount",
            "staged_guarantee", "guarantee_contract_number", "guarantee_expected_end",
            "active")}


class StaffForm(FlaskForm):
    """A bank employee placed on site; the days are checkboxes named `days` (the template)."""

    user_id = SelectField(_l("Staff member"), validators=[Mandatory()], validate_choice=False)
    work_phone = StringField(_l("Work telephone at the site (optional)"),
                             validators=[Optional(), Length(max=40)],
                             render_kw={"inputmode": "tel", "maxlength": 40})


class SiteFilterForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("Search"), validators=[Optional(), Length(max=100)],
                    render_kw={"placeholder": _l("Name or code")})


DAYS = WEEKDAYS
