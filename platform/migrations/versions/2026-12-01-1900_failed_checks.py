"""failed_checks: the compliance requirements an analysis' newest results failed (the calls list's
failed_check filter), backfilled from the stored results

Revision ID: 0012_failed_checks
Revises: 0011_rescoring
Create Date: 2026-12-01 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from callcov.scoring.verdicts import failed_checks

revision: str = "0012_failed_checks"
down_revision: str | None = "0011_rescoring"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500


def _backfill() -> None:
    analyses = sa.table(
        "analyses", sa.column("id", sa.Uuid()), sa.column("results", sa.JSON()), sa.column("failed_checks")
    )
    bind = op.get_bind()
    last = None
    while True:
        query = sa.select(analyses.c.id, analyses.c.results).where(analyses.c.results.is_not(None))
        if last is not None:
            query = query.where(analyses.c.id > last)
        rows = bind.execute(query.order_by(analyses.c.id).limit(BATCH)).all()
        if not rows:
            return
        for row_id, results in rows:
            failed = failed_checks(results)
            if failed:
                bind.execute(sa.update(analyses).where(analyses.c.id == row_id).values(failed_checks=failed))
        last = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "failed_checks",
                sqlmodel.sql.sqltypes.AutoString(length=255),
                nullable=False,
                server_default="",
            )
        )
    _backfill()


def downgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.drop_column("failed_checks")
