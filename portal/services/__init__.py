"""Domain operations. Services flush; the request or CLI command commits.

No service reads flask.request: who acts and from where arrives as a Ctx."""

from __future__ import annotations

from dataclasses import dataclass

from models import User


@dataclass(frozen=True)
class Ctx:
    """Who is acting and from where: what the audit log and the access rules need."""

    user: User | None
    ip: str | None = None

    @property
    def role(self) -> str | None:
        return self.user.role if self.user else None
