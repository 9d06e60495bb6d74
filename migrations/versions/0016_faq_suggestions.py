"""FAQ suggestions: question variants and calibration evidence that tickets produced

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01

A customer's verdict on the bot's answer, or an agent's resolution of a ticket the bot
only suggested for, ties the ticket's question to an FAQ entry. Each waits here for an
editor's review; accepted ones become question variants and calibration evidence.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('faq_suggestion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('question_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('entry_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('correct', sa.Boolean(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('ticket_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('task_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
    sa.Column('conflict_entry_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('reviewed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('reviewed_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('entry_id', 'question_key', 'correct', name='uq_faq_suggestion_question')
    )
    with op.batch_alter_table('faq_suggestion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_faq_suggestion_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_faq_suggestion_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_faq_suggestion_ticket_id'), ['ticket_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('faq_suggestion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_faq_suggestion_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_faq_suggestion_status'))
        batch_op.drop_index(batch_op.f('ix_faq_suggestion_entry_id'))
    op.drop_table('faq_suggestion')
