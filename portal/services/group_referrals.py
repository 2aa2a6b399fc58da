"""Group referrals (集团营销): many buyers in one go, from a CSV file on the partner's pages or a
batch over the API (docs/contract.md).

Each buyer goes through exactly what a single submission goes through: `referrals.prepare` (the
intake schema, the agreement gate, the reference check) and `referrals.register` (attribution
per buyer). The batch is one transaction; each buyer is registered in a savepoint, so a buyer
refused there (already registered by the partner, a reference taken meanwhile) leaves nothing
behind while the others are kept. Nothing commits here: the request does.

`defaults` are merged into every item before it is checked, over what the item says: the hook
for what the upload page chooses once for the whole file (the site the group buys at).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from models import Organization, Referral, utcnow
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx, agreements, audit, probes, referrals
from .errors import AlreadyRegistered, DomainError, Forbidden, ValidationFailed
from .referral_intake import form_fields

MAX_ITEMS = 500  # rows of a file, items of an API batch
MAX_BYTES = 256 * 1024  # a file: 500 rows take about 120 KiB; the preview carries it back
BOM = "\ufeff"

# The file's columns: the intake's own names, the fields of the single form in its order.
COLUMNS = tuple(form_fields())
REQUIRED_COLUMNS = tuple(name for name, face in form_fields().items()
                         if face.required or face.kind == "consent")
OPTIONAL_COLUMNS = tuple(c for c in COLUMNS if c not in REQUIRED_COLUMNS) + (
    "consent_obtained_at",)
# The refused rows come back with why (`refused_csv`): fixed, they are uploaded as they are.
IGNORED_COLUMNS = ("error",)
# What a spreadsheet writes for "yes" in the consent column (the intake's own rule decides the
# rest: anything else is refused with the single form's message).
CONSENT_YES = frozenset({"y", "yes", "true", "1", "on", "是", "同意", "已同意", "√", "✓"})

TEMPLATE_EXAMPLE = {
    "product": "housing_mortgage", "buyer_name": "张伟", "national_id": "110105198506120018",
    "mobile": "13912345678", "employer": "市第一中学",
    "industry": "education_science_culture_health", "monthly_income": "18000",
    "amount": "800000", "term_months": "240", "asset_description": "旭日花园 3-1201",
    "asset_price": "1200000", "down_payment": "400000", "consent": "是",
    "external_ref": "GRP-0001",
}


@dataclass
class Item:
    """One buyer of a batch and what became of it: `referral` when registered, else `error`
    (the refusal, its `fields` naming the intake's flat names)."""

    index: int  # 0-based, in the batch's order
    data: dict
    line: int | None = None  # the file's line, for an upload
    referral: Referral | None = None
    conflict: bool = False
    held: bool = False
    error: DomainError | None = None
    ready: bool = False  # checked and fit to submit (a preview writes nothing)

    @property
    def errors(self) -> dict:
        """{column: message}; a refusal of the whole buyer under "" (no one column)."""
        if self.error is None:
            return {}
        return dict(self.error.fields) or {"": self.error.message}


@dataclass
class Batch:
    items: list[Item] = field(default_factory=list)

    @property
    def accepted(self) -> list[Item]:
        return [i for i in self.items if i.error is None]

    @property
    def refused(self) -> list[Item]:
        return [i for i in self.items if i.error is not None]


class FileRefused(ValidationFailed):
    """The file as a whole cannot be taken: nothing is checked or written."""

    def __init__(self, message):
        super().__init__({"file": message}, message)


# --- reading a file ----------------------------------------------------------------------------

def decode(data: bytes) -> str:
    """The file's text: UTF-8 (with or without a BOM), else GB18030 (what Excel saves in
    Chinese Windows), else refused."""
    if data.startswith(BOM.encode()):
        data = data[3:]
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FileRefused(_l("The file is neither UTF-8 nor GB18030 text. Save it as CSV "
                         "(UTF-8) and upload it again."))


def read_file(data: bytes) -> list[tuple[int, dict]]:
    """[(line, {column: text})] of a CSV file of buyers, or FileRefused (too large, too many
    rows, not text, a header that is not the template's)."""
    if not data:
        raise FileRefused(_l("The file is empty."))
    if len(data) > MAX_BYTES:
        raise FileRefused(_l("The file is larger than %(kb)d KB. Split it into files of at "
                             "most %(n)d rows.", kb=MAX_BYTES // 1024, n=MAX_ITEMS))
    reader = csv.reader(io.StringIO(decode(data), newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        if not any(header):
            raise FileRefused(_l("The file is empty."))
        _check_header(header)
        rows = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(rows) == MAX_ITEMS:
                raise FileRefused(_l("The file has more than %(n)d rows. Split it into files "
                                     "of at most %(n)d rows.", n=MAX_ITEMS))
            row = dict(zip(header, (v.strip() for v in values), strict=False))
            if len(values) != len(header):
                row["__fields__"] = (len(values), len(header))
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise FileRefused(_l("The file is not valid CSV (line %(line)d: %(error)s).",
                             line=reader.line_num, error=str(exc))) from None
    if not rows:
        raise FileRefused(_l("The file has a header but no rows."))
    return rows


def _check_header(header: list[str]) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header
               if c not in COLUMNS and c not in OPTIONAL_COLUMNS and c not in IGNORED_COLUMNS]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if missing or unknown or repeated:
        parts = []
        if missing:
            parts.append(str(_l("missing column(s): %(c)s", c=", ".join(missing))))
        if unknown:
            parts.append(str(_l("unknown column(s): %(c)s", c=", ".join(unknown)[:200])))
        if repeated:
            parts.append(str(_l("repeated column(s): %(c)s", c=", ".join(repeated))))
        raise FileRefused(_l("The first line must be the template's header (%(parts)s). "
                             "Download the template and copy your rows into it.",
                             parts="; ".join(parts)))


def row_intake(row: dict) -> dict:
    """A file's row as the flat intake dict the single form gives."""
    data = {name: row.get(name, "") for name in COLUMNS}
    consent = str(row.get("consent", "")).strip()
    data["consent"] = True if consent.lower() in CONSENT_YES else consent
    if row.get("consent_obtained_at"):
        data["consent_obtained_at"] = row["consent_obtained_at"]
    return data


def items_of_file(rows: list[tuple[int, dict]]) -> list[Item]:
    items = []
    for index, (line, row) in enumerate(rows):
        item = Item(index, row_intake(row), line=line)
        if "__fields__" in row:
            item.error = ValidationFailed({"": _l(
                "This row has %(got)d fields; the header has %(want)d.",
                got=row["__fields__"][0], want=row["__fields__"][1])})
        items.append(item)
    return items


def template_csv() -> str:
    """The file to fill in: the header and one example row, with a BOM so that Excel reads the
    Chinese as UTF-8."""
    return BOM + _csv([COLUMNS, [TEMPLATE_EXAMPLE.get(c, "") for c in COLUMNS]])


def refused_csv(batch: Batch) -> str:
    """The refused rows as they came, with why in an `error` column, to fix and upload again
    as they are (the upload ignores that column)."""
    lines = [(*COLUMNS, "error")]
    for item in batch.refused:
        why = "; ".join(f"{k}: {v}" if k else str(v) for k, v in item.errors.items())
        values = [item.data.get(c, "") for c in COLUMNS]
        values[COLUMNS.index("consent")] = "是" if item.data.get("consent") is True else (
            item.data.get("consent") or "")
        lines.append((*values, why))
    return BOM + _csv(lines)


def _csv(lines) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows([["" if v is None else str(v) for v in line] for line in lines])
    return buffer.getvalue()


# --- submitting --------------------------------------------------------------------------------

def _gate(org: Organization):
    """The agreement gate of a single submission, its answer read once for the batch."""
    covered = agreements.covered_products(org)

    def check(org_, product):
        if product.code not in covered:
            agreements.check_product_covered(org_, product)
    return check


def _repeats_item(earlier: Item):
    return _l("This reference repeats item %(n)d of the batch.", n=earlier.index)


def repeats_line(earlier: Item):
    return _l("This reference repeats line %(n)d of the file.", n=earlier.line)


def check(ctx: Ctx, org: Organization, items: list[Item], *, defaults: dict | None = None,
          repeat_message=None) -> list[tuple[Item, referrals.Intake]]:
    """Check every item as a single submission is checked, writing nothing: the items that
    pass with their prepared intakes; the others get their `error`. Items refused before (a
    malformed row, a malformed API item) stay refused. `repeat_message(earlier)` says that an
    item's reference repeats an earlier Item's (a line of the file, an item of the batch)."""
    if len(items) > MAX_ITEMS:
        raise ValidationFailed({"items": _l("At most %(n)d buyers in one batch.", n=MAX_ITEMS)})
    if not org.can_submit:
        raise Forbidden(_l("Only an active partner organisation can submit referrals."))
    gate = _gate(org)
    repeat_message = repeat_message or _repeats_item
    prepared, buyers, references = [], {}, {}
    for item in items:
        if item.error is not None:
            continue
        data = {**item.data, **(defaults or {})}
        try:
            intake = referrals.prepare(ctx, org, data, check_product=gate)
        except (ValidationFailed, Forbidden) as exc:
            item.error = exc
            continue
        # Within the batch, as though submitted one after another: a buyer met again is the
        # partner's own already, a reference given twice is taken.
        buyer = (intake.id_hash, intake.product.code)
        reference = intake.clean["external_ref"]
        if buyer in buyers:
            item.error = AlreadyRegistered()
        elif reference and reference in references:
            item.error = ValidationFailed({"external_ref": repeat_message(references[reference])})
        else:
            buyers[buyer] = item
            if reference:
                references[reference] = item
            item.ready = True
            prepared.append((item, intake))
    return prepared


def submit(ctx: Ctx, org: Organization, items: list[Item],
           prepared: list[tuple[Item, referrals.Intake]]) -> Batch:
    """Register the checked items, each in a savepoint (attribution per buyer); one audit
    entry for the batch beside each referral's own."""
    hold = probes.should_hold(org.id, utcnow()) if prepared else False
    for item, intake in prepared:
        try:
            with db.session.begin_nested():
                result = referrals.register(ctx, intake, hold=hold)
        except (ValidationFailed, AlreadyRegistered) as exc:
            item.error, item.ready = exc, False
            continue
        item.referral, item.conflict, item.held = result.referral, result.conflict, result.held
    batch = Batch(items)
    if batch.accepted:
        audit.record(ctx, "referral.batch", org, submitted=len(batch.accepted),
                     refused=len(batch.refused),
                     conflict=sum(1 for i in batch.accepted if i.conflict))
    return batch


def run(ctx: Ctx, org: Organization, items: list[Item], *, defaults: dict | None = None,
        write: bool = True, repeat_message=None) -> Batch:
    """`check`, then with `write` `submit`: a preview writes nothing."""
    prepared = check(ctx, org, items, defaults=defaults, repeat_message=repeat_message)
    return submit(ctx, org, items, prepared) if write else Batch(items)
