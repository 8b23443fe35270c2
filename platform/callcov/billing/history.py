"""``GET /billing/history``: usage records and invoices of the account, newest first, one page."""

from __future__ import annotations

import uuid

from sqlalchemy import func, literal, union_all
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.billing.schemas import HistoryItem
from callcov.kit.pagination import PageParams
from callcov.models import Invoice, UsageRecord


async def history_page(
    session: AsyncSession, user_id: uuid.UUID, page: PageParams
) -> tuple[list[HistoryItem], int]:
    records = select(
        col(UsageRecord.id).label("id"),
        literal("usage_record").label("kind"),
        col(UsageRecord.created_at).label("created_at"),
    ).where(UsageRecord.user_id == user_id)
    invoices = select(
        col(Invoice.id).label("id"),
        literal("invoice").label("kind"),
        col(Invoice.created_at).label("created_at"),
    ).where(Invoice.user_id == user_id)
    both = union_all(records, invoices).subquery()
    total = (await session.exec(select(func.count()).select_from(both))).one()
    rows = (
        await session.exec(
            select(both.c.id, both.c.kind)
            .order_by(both.c.created_at.desc(), both.c.id.desc())
            .offset(page.skip)
            .limit(page.limit)
        )
    ).all()
    record_ids = [row[0] for row in rows if row[1] == "usage_record"]
    invoice_ids = [row[0] for row in rows if row[1] == "invoice"]
    found: dict[uuid.UUID, HistoryItem] = {}
    if record_ids:
        for record in await session.exec(select(UsageRecord).where(col(UsageRecord.id).in_(record_ids))):
            found[record.id] = HistoryItem.of_record(record)
    if invoice_ids:
        for invoice in await session.exec(select(Invoice).where(col(Invoice.id).in_(invoice_ids))):
            found[invoice.id] = HistoryItem.of_invoice(invoice)
    return [found[row[0]] for row in rows if row[0] in found], int(total)
