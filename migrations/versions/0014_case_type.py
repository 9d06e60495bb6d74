"""Every case and task names its case type

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30

Lists, the inbox and the change feed filter by the kind of case (`GET /case-types`).
Everything opened before this migration is a support ticket.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def _case_type() -> sa.Column:
    return sa.Column('case_type', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False,
                     server_default='support-ticket')


def upgrade() -> None:
    for table in ('ticket', 'task'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(_case_type())
            batch_op.create_index(batch_op.f(f'ix_{table}_case_type'), ['case_type'], unique=False)
    with op.batch_alter_table('change_event', schema=None) as batch_op:
        batch_op.add_column(_case_type())


def downgrade() -> None:
    with op.batch_alter_table('change_event', schema=None) as batch_op:
        batch_op.drop_column('case_type')
    for table in ('task', 'ticket'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_case_type'))
            batch_op.drop_column('case_type')
