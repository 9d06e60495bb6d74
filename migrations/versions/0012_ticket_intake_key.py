"""A ticket's external_ref is scoped to whoever sent it: the unique key is the intake key

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

`intake_key` is `<caller scope>:<external_ref>`: two callers' refs never meet, and the chat
webhook's refs live in their own namespace. Tickets opened before this migration keep their
ref as it was, under the scope `legacy`.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# Unnamed on SQLite; reflected under this name there so batch mode can drop it.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_unique_name() -> str:
    return "ticket_external_ref_key" if op.get_bind().dialect.name == "postgresql" else "uq_ticket_external_ref"


def upgrade() -> None:
    with op.batch_alter_table('ticket', schema=None, naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column('intake_key', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True))
        batch_op.drop_constraint(_old_unique_name(), type_='unique')
        batch_op.create_index(batch_op.f('ix_ticket_external_ref'), ['external_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_intake_key'), ['intake_key'], unique=True)
    op.execute("UPDATE ticket SET intake_key = 'legacy:' || external_ref WHERE external_ref IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('ticket', schema=None, naming_convention=NAMING) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_intake_key'))
        batch_op.drop_index(batch_op.f('ix_ticket_external_ref'))
        batch_op.create_unique_constraint(_old_unique_name(), ['external_ref'])
        batch_op.drop_column('intake_key')
