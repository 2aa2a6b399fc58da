"""The bank's face: the officers' work queue, referral detail and decisions, the conflict queue."""

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from blueprints import going_back_to, paginate, refused
from models import Document
from portal.extensions import db
from portal.labels import ACTIONS, PARTNER_TYPES, STATES
from portal.security import bank_required, ctx, fresh_login_required, roles_required, safe_next
from portal.services import (
    audit,
    disclosure,
    documents,
    lifecycle,
    partners,
    portfolio,
    queue,
    referrals,
    reveals,
)
from portal.services.errors import ValidationFailed
from portal.services.lifecycle import State

from . import queue_page
from .forms import (
    ActionForm,
    ReferralFilterForm,
    RequestDocumentsForm,
    ResolveConflictForm,
    RevealForm,
    ReviewDocumentForm,
    TransitionForm,
)

bp = Blueprint("bank", __name__)

# Final or hard-to-undo moves ask the officer to confirm first.
CONFIRM_STATES = frozenset({"declined", "withdrawn", "disbursed", "expired"})
# Moves out of a conflict go through the conflict form (it needs a written reason and sends
# the partner a neutral message).
CONFLICT_STATES = frozenset({State.submitted.value, State.rejected_duplicate.value})




def _filter_form(statuses) -> ReferralFilterForm:
    form = ReferralFilterForm(formdata=request.args)
    form.status.choices = [("", _("Any status"))] + [(s, STATES[s]) for s in statuses]
    form.product.choices = [("", _("Any product"))] + [
        (p.code, p.display_name(str(_locale()))) for p in queue.products()]
    form.org.render_kw = {"list": "partner-options", "autocomplete": "off",
                          "data-partner-lookup": url_for("bank.partner_lookup"),
                          "placeholder": _("Any partner")}
    form.partner_type.choices = [("", _("Any partner type"))] + [
        (k, v) for k, v in PARTNER_TYPES.items() if k != "bank"]
    form.validate()
    return form


def _locale():
    return get_locale() or "zh_CN"


def _org_id(form: ReferralFilterForm) -> int | None:
    """The partner the filter names; a code no partner has shows an error and matches nothing."""
    if not (form.org.data or "").strip():
        return None
    org = partners.by_reference(form.org.data, current_user)
    if org is None:
        form.org.errors = [*form.org.errors, _("No partner has this code.")]
        return -1
    return org.id


def _filters(form: ReferralFilterForm) -> queue.ReferralFilters:
    return queue.ReferralFilters(q=form.value("q"), status=form.value("status"),
                                 product=form.value("product"), org_id=_org_id(form),
                                 partner_type=form.value("partner_type"),
                                 customer_class=form.customer_class_value())


@bp.route("/queue", endpoint="queue")
@bank_required
def work_queue():
    form = _filter_form(queue.QUEUE_STATES)
    return queue_page.render(form, _filters(form))


@bp.route("/referrals", endpoint="referrals")
@bank_required
def all_referrals():
    form = _filter_form([s.value for s in State])
    page = paginate(queue.all_referrals(current_user, _filters(form)), seek=True)
    return render_template("bank/referrals.html", form=form, page=page,
                           bank_clock=referrals.bank_clock_seconds)


@bp.route("/partners/lookup", endpoint="partner_lookup")
@bank_required
def partner_lookup():
    """Partners matching what was typed in a filter bar's partner box, as JSON."""
    found = partners.lookup(request.args.get("q", ""), current_user)
    return jsonify([{"code": o.code, "name": o.name} for o in found])


def _actions(referral) -> list[str]:
    """The moves offered as buttons: every allowed one but documents_requested (its own form),
    the conflict outcomes (the conflict form) and a held submission's (the held list)."""
    if referral.status == State.held.value:
        return []
    return [s.value for s in lifecycle.next_states(referral.status, current_user.role)
            if s != State.documents_requested and s.value not in CONFLICT_STATES]


def _failure(kind: str, key, form, fields: dict | None = None) -> dict:
    """A refused form, to show again with what was typed and why it was refused."""
    errors = {name: [str(m) for m in messages] for name, messages in form.errors.items()}
    for name, message in (fields or {}).items():
        errors.setdefault(name, []).append(str(message))
    data = {name: value for name, value in form.data.items() if name != "csrf_token"}
    return {"kind": kind, "key": key, "data": data, "errors": errors}


def _render_referral(referral, *, revealed=None, failed=None, status=200):
    """The detail page; `failed` (from _failure) shows a refused form again."""
    can_request = State.documents_requested in lifecycle.next_states(referral.status,
                                                                     current_user.role)
    can_resolve = (referral.status == State.conflict.value
                   and current_user.role in ("channel_manager", "admin"))
    holder = (referrals.conflict_holder(referral, current_user)
              if referral.status in (State.conflict.value, State.rejected_duplicate.value)
              else None)
    return render_template(
        "bank/referral.html", r=referral, revealed=revealed, actions=_actions(referral),
        confirm_states=CONFIRM_STATES, can_request=can_request, can_resolve=can_resolve,
        holder=holder, checklist=documents.checklist(referral),
        bank_seconds=referrals.bank_clock_seconds(referral),
        partner_seconds=referrals.partner_clock_seconds(referral),
        failed=failed, action_form=ActionForm(),
        reveal_over_limit=reveals.over_limit(current_user.id),
        reveal_requests=reveals.open_requests(current_user.id, referral.id),
        statements=portfolio.history(referral),
        assignment_box=queue_page.assignment_box(referral),
        terms=disclosure.loan_terms(referral),
    ), status


def _load(referral_id: int):
    return referrals.get_for(current_user, referral_id)


@bp.route("/referrals/<int:referral_id>")
@bank_required
def referral(referral_id: int):
    return _render_referral(_load(referral_id))


@bp.route("/referrals/<int:referral_id>/reveal", methods=["POST"])
@roles_required("credit_officer", "channel_manager", "admin")
@fresh_login_required
def reveal(referral_id: int):
    referral = _load(referral_id)
    form = RevealForm()
    if not form.validate_on_submit():
        raise refused(_("The form has expired. Reload the page and try again."),
                      "bank.referral", referral_id=referral_id)
    # The reason, the hourly limit and the audit are the service's (services/reveals.py).
    with going_back_to("bank.referral", referral_id=referral_id):
        clear = referrals.reveal(ctx(), referral, form.reason_code.data, form.reason_text.data)
    # Shown on this one page only: never put in the session or a redirect.
    return _render_referral(referral, revealed=clear)


@bp.route("/referrals/<int:referral_id>/transition", methods=["POST"])
@bank_required
def transition(referral_id: int):
    referral = _load(referral_id)
    form = TransitionForm()
    to = form.to.data or ""
    if to in CONFLICT_STATES and referral.status == State.conflict.value:
        raise refused(_("Resolve an attribution conflict with the conflict form."),
                      "bank.referral", referral_id=referral_id)
    if to == State.documents_requested.value:
        raise refused(_("Request documents with the document request form."),
                      "bank.referral", referral_id=referral_id)
    if not form.validate_on_submit():
        if form.version.errors or form.to.errors:
            raise refused(_("The form was incomplete. Reload the page and try again."),
                          "bank.referral", referral_id=referral_id)
        return _render_referral(referral, failed=_failure("transition", to, form), status=422)
    with going_back_to("bank.referral", referral_id=referral_id):
        try:
            referrals.transition(ctx(), referral, to, note=form.note.data,
                                 partner_note=form.partner_note.data,
                                 reason_code=form.reason_code.data or None,
                                 expected_version=int(form.version.data), terms=form.terms())
        except ValidationFailed as err:
            if "to" in err.fields:  # not a state at all: nothing to show again
                raise refused(err.fields["to"], "bank.referral",
                              referral_id=referral_id) from None
            return _render_referral(referral, failed=_failure("transition", to, form, err.fields),
                                    status=422)
    flash(_("%(action)s: done. The referral is now %(state)s.",
            action=_action_label(to), state=STATES.get(referral.status, referral.status)),
          "success")
    return redirect(url_for("bank.referral", referral_id=referral_id))


def _action_label(to: str) -> str:
    return str(ACTIONS.get(to, to))


@bp.route("/referrals/<int:referral_id>/request-documents", methods=["POST"])
@bank_required
def request_documents(referral_id: int):
    referral = _load(referral_id)
    form = RequestDocumentsForm()
    if not form.validate_on_submit():
        if form.version.errors:
            raise refused(_("The form was incomplete. Reload the page and try again."),
                          "bank.referral", referral_id=referral_id)
        return _render_referral(referral, failed=_failure("request", None, form), status=422)
    with going_back_to("bank.referral", referral_id=referral_id):
        try:
            documents.request_documents(ctx(), referral, form.kinds.data or [],
                                        form.note.data.strip(),
                                        internal_note=form.internal_note.data,
                                        expected_version=int(form.version.data),
                                        items=form.item_labels())
        except ValidationFailed as err:
            return _render_referral(referral, failed=_failure("request", None, form, err.fields),
                                    status=422)
    flash(_("Documents requested. The partner's clock is running now."), "success")
    return redirect(url_for("bank.referral", referral_id=referral_id))


@bp.route("/documents/<int:document_id>/review", methods=["POST"])
@bank_required
def review_document(document_id: int):
    document = db.session.get(Document, document_id)
    if document is None:
        abort(404)
    referral = _load(document.referral_id)
    form = ReviewDocumentForm()
    if not form.validate_on_submit():
        raise refused(_("Choose to accept or reject the document."), "bank.referral",
                      referral_id=referral.id)
    with going_back_to("bank.referral", referral_id=referral.id):
        try:
            documents.review(ctx(), document, accept=form.decision.data == "accept",
                             reason=form.reason.data, note=form.note.data)
        except ValidationFailed as err:
            return _render_referral(
                referral, failed=_failure("item", document.stipulation_id, form, err.fields),
                status=422)
    flash(_("Document accepted.") if document.status == "accepted" else _("Document rejected."),
          "success")
    return redirect(url_for("bank.referral", referral_id=referral.id))


@bp.route("/referrals/<int:referral_id>/conditions/<int:item_id>/review", methods=["POST"])
@bank_required
def review_item(referral_id: int, item_id: int):
    """Accept or reject one requested item (all its files waiting for review)."""
    referral = _load(referral_id)
    item = documents.item_of(referral, item_id)  # another referral's item: 404
    form = ReviewDocumentForm()
    with going_back_to("bank.referral", referral_id=referral.id):
        if not form.validate_on_submit():
            raise refused(_("Choose to accept or reject the item."), "bank.referral",
                          referral_id=referral.id)
        try:
            documents.review_item(ctx(), item, accept=form.decision.data == "accept",
                                  reason=form.reason.data, note=form.note.data)
        except ValidationFailed as err:
            return _render_referral(
                referral, failed=_failure("item", item_id, form, err.fields), status=422)
    flash(_("Item accepted.") if item.status == "accepted"
          else _("Item rejected. The partner is asked for a new upload."), "success")
    return redirect(url_for("bank.referral", referral_id=referral.id))


@bp.route("/referrals/<int:referral_id>/documents/<int:document_id>")
@bank_required
def document(referral_id: int, document_id: int):
    referral = _load(referral_id)
    doc = queue.document_of(referral, document_id)
    audit.record(ctx(), "document.download", doc, referral=referral.id)
    return send_file(documents.path_of(doc), mimetype=doc.content_type, as_attachment=True,
                     download_name=doc.filename)


def partner_scope() -> str:
    """Whose partners a manager's list shows: ?scope=mine|all, by default a channel manager's
    own and everyone's for an admin."""
    scope = request.args.get("scope")
    if scope not in ("mine", "all"):
        scope = "mine" if current_user.role == "channel_manager" else "all"
    return scope


@bp.route("/conflicts")
@roles_required("channel_manager", "admin")
def conflicts():
    scope = partner_scope()
    page = paginate(queue.conflict_queue(current_user, all_partners=scope == "all"))
    return render_template("bank/conflicts.html", page=page, scope=scope,
                           rows=referrals.with_holders(page.items, current_user),
                           bank_clock=referrals.bank_clock_seconds)


@bp.route("/referrals/<int:referral_id>/resolve", methods=["POST"])
@roles_required("channel_manager", "admin")
def resolve_conflict(referral_id: int):
    referral = _load(referral_id)
    form = ResolveConflictForm()
    back = safe_next(form.next.data) or url_for("bank.conflicts")
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for message in errors:
                flash(str(message), "danger")
        return redirect(back)
    grant = form.decision.data == "grant"
    if grant:
        partner_note = _("The bank has reviewed the registration of this buyer and will "
                         "process this referral.")
    else:
        partner_note = _("This buyer is already registered with the bank for this product, "
                         "so this referral will not be processed.")
    with going_back_to(url=back):
        referrals.transition(ctx(), referral,
                             State.submitted.value if grant else State.rejected_duplicate.value,
                             note=form.reason.data, partner_note=partner_note,
                             expected_version=int(form.version.data))
    flash(_("Referral #%(id)d granted to its partner and sent to the queue.", id=referral.id)
          if grant else _("Referral #%(id)d rejected as a duplicate.", id=referral.id), "success")
    return redirect(back)
