"""`flask --app wsgi audit verify | anchor` (docs/audit.md).

`verify` exits 0 when the chain is intact and 1 when it is broken, naming the first broken entry;
other failures (an unreadable anchor file) exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup

from ..services.audit import chain, checks
from ..unit_of_work import unit_of_work
from .common import SYSTEM

audit_group = AppGroup("audit", help="The audit trail's hash chain.")
ANCHOR_KIND = "portal-audit-anchor"


def _read_anchor(path: str) -> chain.Anchor:
    try:
        data = json.loads(Path(path).read_text())
        if data.get("kind") != ANCHOR_KIND:
            raise ValueError("not an audit anchor file")
        seq, digest = int(data["seq"]), str(data["hash"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise click.exceptions.UsageError(f"Cannot read the anchor {path}: {exc}") from None
    return chain.Anchor(seq, digest, data.get("at", ""), source=f"exported ({path})")


@audit_group.command("verify")
@click.option("--anchor", "anchor_files", multiple=True, type=click.Path(dir_okay=False),
              help="An anchor exported by `audit anchor --out`, checked too (repeatable).")
@click.option("--batch", default=5000, show_default=True, help="Entries read at a time.")
def verify(anchor_files, batch):
    """Walk the whole hash chain; exit 1 and name the first broken entry if any."""
    exported = [_read_anchor(path) for path in anchor_files]
    with unit_of_work():
        verdict = chain.walk(anchors=chain.stored_anchors() + exported, batch=batch)
        chain.record_check(verdict, kind="full", made_by="cli")
    if not verdict.ok:
        click.echo(f"Audit chain BROKEN at entry #{verdict.broken_seq}"
                   f"{f' (id {verdict.broken_id})' if verdict.broken_id else ''}: "
                   f"{verdict.problem}. Entries #1–#{verdict.last_seq} verified before it.",
                   err=True)
        raise click.exceptions.Exit(1)
    anchors = len(verdict.anchors_checked)
    click.echo(f"Audit chain intact: {verdict.entries} entries, #1–#{verdict.last_seq}, head "
               f"{verdict.last_hash}; {anchors} anchor{'s' if anchors != 1 else ''} matched.")
    if verdict.unsealed:
        click.echo(f"Note: {verdict.unsealed} entries were written outside the application's "
                   "transactions and are not yet linked; the next audited commit links them.")


@audit_group.command("anchor")
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="Write the anchor to this file (else to standard output).")
def anchor(out):
    """Store the chain's head as an anchor now and export it, to keep somewhere else."""
    with unit_of_work():
        made = checks.anchor_now(SYSTEM, "cli")
        document = {"kind": ANCHOR_KIND, "seq": made.seq, "hash": made.hash,
                    "at": made.at.isoformat()}
    text = json.dumps(document, indent=2) + "\n"
    if out:
        Path(out).write_text(text)
        click.echo(f"Anchor #{made.seq} written to {out}. Keep it away from this database; "
                   f"`audit verify --anchor {out}` checks the chain against it.")
    else:
        click.echo(text, nl=False)
