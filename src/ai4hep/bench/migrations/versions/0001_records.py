"""The records table: one row per benchmark record.

Scalar fields are columns (what the leaderboard filters and groups by); the nested parts of a record are JSON (JSON on
PostgreSQL, TEXT on SQLite). The columns are spelled out here rather than imported from the store, so this revision
keeps creating the same table when the store's code moves on.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "records",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("created", sa.String(), nullable=False),
        sa.Column("suite", sa.String(), nullable=False),
        sa.Column("task", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("config_name", sa.String(), nullable=False),
        sa.Column("budget", sa.String(), nullable=False),
        sa.Column("primary_metric", sa.String(), nullable=False),
        sa.Column("dataset_hash", sa.String(), nullable=False),
        sa.Column("ai4hep_version", sa.String(), nullable=False),
        sa.Column("artifacts", sa.String(), nullable=False),
        sa.Column("seeds", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("cost", sa.JSON(), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("dataset_card", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
    )
    op.create_index("ix_records_task_model", "records", ["task", "model"])
    op.create_index("ix_records_suite", "records", ["suite"])


def downgrade() -> None:
    op.drop_index("ix_records_suite", table_name="records")
    op.drop_index("ix_records_task_model", table_name="records")
    op.drop_table("records")
