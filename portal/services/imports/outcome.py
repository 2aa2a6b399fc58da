"""What one batch of an import did, for the job's counters and its rejected rows."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import DomainError

MAX_REASON = 500


@dataclass
class BatchOutcome:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejects: list[tuple[int, str]] = field(default_factory=list)
    org_ids: set[int] = field(default_factory=set)

    def reject(self, line: int, reason) -> None:
        self.rejects.append((line, str(reason)[:MAX_REASON]))


def errors_text(err: DomainError) -> str:
    if err.fields:
        return "; ".join(f"{k}: {v}" for k, v in err.fields.items())
    return str(err.message)
