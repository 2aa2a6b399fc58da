"""API v1: the messages on a referral between the partner and the bank. Partner keys read and
write their own organisation's referrals' threads; bank keys any referral's. The same service as
the pages (portal/services/messages.py); what a partner reads is shaped by
services/disclosure.py, and the bank reads the same fields."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import request
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from portal.extensions import db
from portal.services import disclosure, messages
from portal.services.messages import MessageInput

from . import schemas
from .common import bp, ctx, json_body, json_response, page_of, parse, rate_limited
from .idempotency import idempotent
from .openapi import operation
from .routes import _referral


class MessageOut(BaseModel):
    id: int
    referral_id: int
    at: datetime = Field(description="When it was written.")
    by: Literal["partner", "bank"] = Field(description="The side that wrote it.")
    author: str | None = Field(description="The name of the person who wrote it.")
    body: str
    read_at: datetime | None = Field(description="When the other side first read it (on its "
                                                 "page, or by answering); null while unread.")


class MessageList(BaseModel):
    items: list[MessageOut]
    page: int
    per_page: int
    total: int


def _out(message, org_id: int) -> dict:
    view = disclosure.message(message, org_id)
    return MessageOut(id=view["id"], referral_id=view["referral_id"], at=view["at"],
                      by=view["by"], author=view["author"], body=view["body"],
                      read_at=view["read_at"]).model_dump(mode="json")


@bp.route("/referrals/<int:referral_id>/messages", methods=["GET"])
@operation("listMessages", "The messages between your organisation and the bank on a referral, "
                           "oldest first", tag="messages", query=schemas.PageQuery,
           description="Reading the list does not mark anything read.",
           responses={200: (MessageList, "A page of the thread.")}, errors=("404", "422"))
@rate_limited
def list_messages(referral_id: int):
    referral = _referral(referral_id)
    args = parse(schemas.PageQuery, request.args.to_dict())
    query = messages.thread_page(referral)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.limit(args.per_page).offset((args.page - 1) * args.per_page))
    return page_of([_out(m, referral.org_id) for m in rows], args, total)


@bp.route("/referrals/<int:referral_id>/messages", methods=["POST"])
@operation("postMessage", "Write a message on a referral to the other side", tag="messages",
           body=MessageInput,
           description="A partner's message reaches the bank's officer on the referral and the "
                       "partner's channel manager; a bank's message reaches the partner's "
                       "users (in the portal and by e-mail) and its `referral.message` "
                       "webhook. Writing marks what the other side wrote before as read. An "
                       "empty body, or one over 2000 characters, gives 422 with `fields.body`.",
           responses={201: (MessageOut, "The message.")}, errors=("404", "422"))
@rate_limited
@idempotent
def post_message(referral_id: int):
    referral = _referral(referral_id)
    body = json_body(MessageInput)
    message = messages.post(ctx(), referral, body.body)
    return json_response(_out(message, referral.org_id), 201)
