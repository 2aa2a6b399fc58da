from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import UTCDateTime, utcnow


class DistributionModel(str, enum.Enum):
    """How a branch works its region's partners (the source study's three ways)."""

    loan_centre_deep = "loan_centre_deep"        # 个贷中心深度分销
    joint_deep = "joint_deep"                    # 经营行联合深度分销
    key_account = "key_account"                  # 关键客户维护


class BranchLevel(int, enum.Enum):
    province = 0
    second_level = 1      # 二级分行
    operating = 2         # 经营行


class Branch(db.Model):
    """A branch of the bank's tree: the province at the root, second-level branches under it,
    operating branches under those.

    `path` is the materialised path of ids from the root ("/1/4/9/"): a branch's subtree is every
    branch whose path starts with its own, one indexed prefix match instead of a recursive query
    on every request.
    """

    __tablename__ = "branch"
    __table_args__ = (
        Index("ix_branch_path", "path", postgresql_ops={"path": "text_pattern_ops"}),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"), index=True)
    level: Mapped[int] = mapped_column(default=0)
    model: Mapped[str | None] = mapped_column(String(30))
    path: Mapped[str] = mapped_column(String(400), default="/")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    parent: Mapped[Branch | None] = relationship(remote_side=[id])

    @property
    def is_root(self) -> bool:
        return self.parent_id is None

    def contains(self, other: Branch | None) -> bool:
        """Whether `other` is this branch or below it (None, the root's place, is not)."""
        return other is not None and other.path.startswith(self.path)

    def __repr__(self) -> str:
        return f"<Branch {self.code}>"


class DirectoryStamp(db.Model):
    """One row whose stamp changes whenever the bank's directory does: a partner's code, name,
    kind, status, branch or channel manager, the branch tree, a member of staff's name, role,
    branch or standing (migration 0024's triggers, whoever writes). Pages that keep what they
    read from the directory compare the stamp rather than read it all again. A random stamp, not
    a count: a count undone by a rollback would come round again for different data."""

    __tablename__ = "directory_stamp"

    id: Mapped[int] = mapped_column(primary_key=True)
    stamp: Mapped[int] = mapped_column(BigInteger)
