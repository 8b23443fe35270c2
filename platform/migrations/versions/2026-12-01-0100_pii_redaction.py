"""pii redaction: what a submission asked to redact (PII policies, the audio), the bleeped copy of
the recording and when the original was deleted

Revision ID: 0009_pii_redaction
Revises: 0008_billing_integrity
Create Date: 2026-12-01 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import callcov.kit.time

revision: str = "0009_pii_redaction"
down_revision: str | None = "0008_billing_integrity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("redact_pii", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(
            sa.Column("redact_pii_policies", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column("redact_audio", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("redacted_audio_uri", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True)
        )
        batch_op.add_column(
            sa.Column("original_audio_deleted_at", callcov.kit.time.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("analyses", schema=None) as batch_op:
        batch_op.drop_column("original_audio_deleted_at")
        batch_op.drop_column("redacted_audio_uri")
        batch_op.drop_column("redact_audio")
        batch_op.drop_column("redact_pii_policies")
        batch_op.drop_column("redact_pii")
