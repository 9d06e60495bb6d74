"""A chat conversation's current ticket

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30

Messages of one conversation that arrive together used to open a ticket each: the webhook
looked for the open ticket in the read model, which the first ticket had not reached yet.
This row is claimed by the conversation's first message, so the others find its ticket.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('chat_conversation',
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('conversation_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('ticket_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('customer_id', 'conversation_id')
    )
    # Conversations with a ticket still open carry on in it.
    op.execute("INSERT INTO chat_conversation (customer_id, conversation_id, ticket_id, updated_at) "
               "SELECT t.customer_id, t.conversation_id, t.id, t.updated_at FROM ticket t "
               "WHERE t.conversation_id IS NOT NULL AND t.status != 'closed' AND t.opened_at = "
               "(SELECT max(o.opened_at) FROM ticket o WHERE o.customer_id = t.customer_id "
               "AND o.conversation_id = t.conversation_id AND o.status != 'closed')")


def downgrade() -> None:
    op.drop_table('chat_conversation')
