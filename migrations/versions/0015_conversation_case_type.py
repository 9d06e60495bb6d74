"""A chat conversation's current case names its case type

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30

Intake rules open a chat message's case as any case type a chat can open; the
conversation's later messages go to that case's workflow, whose id depends on its type.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('chat_conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('case_type', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False,
                                      server_default='support-ticket'))


def downgrade() -> None:
    with op.batch_alter_table('chat_conversation', schema=None) as batch_op:
        batch_op.drop_column('case_type')
