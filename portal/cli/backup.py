"""`flask --app wsgi backup PATH` and `flask --app wsgi restore PATH` (docs/operations.md)."""

from __future__ import annotations

import click

from ..services import backup

# No unit of work here: the backup reads through its own snapshot, and the restore writes with
# the database's own tools into a database that is empty until it is done.


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
def backup_command(path):
    """Write the database, the uploaded documents and a manifest to one archive."""
    try:
        manifest = backup.create(path)
    except backup.BackupError as err:
        raise click.ClickException(str(err)) from None
    rows = sum(manifest["tables"].values())
    click.echo(f"Backup written to {path}: {len(manifest['tables'])} tables, {rows} rows, "
               f"{len(manifest['uploads'])} documents, {len(manifest['pdf_cache'])} cached "
               f"agreement PDFs listed; audit head #{manifest['audit_head']['seq']} "
               f"{manifest['audit_head']['hash']}.")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def restore_command(path):
    """Restore a backup into the empty database DATABASE_URL names and an empty UPLOAD_DIR."""
    try:
        report = backup.restore(path)
    except backup.BackupError as err:
        raise click.ClickException(str(err)) from None
    for name, (expected, found) in sorted(report.mismatched_tables.items()):
        click.echo(f"Table {name}: {found} rows restored, the backup had {expected}.", err=True)
    for name in report.mismatched_files:
        click.echo(f"Document {name}: its hash differs from the backup's.", err=True)
    if report.audit is not None and not report.audit.ok:
        click.echo(f"Audit chain broken at entry #{report.audit.broken_seq}: "
                   f"{report.audit.problem}", err=True)
    if not report.ok:
        raise click.ClickException("The restore does not match its backup (above).")
    click.echo(f"Restored {path}: {len(report.tables)} tables with the backup's row counts, "
               f"{report.files} documents with their hashes, audit chain intact to "
               f"#{report.audit.last_seq}.")
