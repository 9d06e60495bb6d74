"""agents, routing cursor, change feed and task SLA columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agent',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('skills', sa.JSON(), nullable=False),
    sa.Column('languages', sa.JSON(), nullable=False),
    sa.Column('queues', sa.JSON(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('senior', sa.Boolean(), nullable=False),
    sa.Column('presence', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('presence_changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('change_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('ticket_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('task_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
    sa.Column('queue', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('change_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_event_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_change_event_queue'), ['queue'], unique=False)

    op.create_table('routing_cursor',
    sa.Column('queue', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('last_assigned', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.PrimaryKeyConstraint('queue')
    )
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('skills', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column('customer_tier', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False,
                                      server_default='standard'))
        batch_op.add_column(sa.Column('priority_rank', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('notes', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('routing', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index(batch_op.f('ix_task_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_task_priority_rank'), ['priority_rank'], unique=False)
        # the inbox: open tasks of a queue, most urgent or oldest first
        batch_op.create_index('ix_task_queue_status_created', ['queue', 'status', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_index('ix_task_queue_status_created')
        batch_op.drop_index(batch_op.f('ix_task_priority_rank'))
        batch_op.drop_index(batch_op.f('ix_task_due_at'))
        batch_op.drop_column('routing')
        batch_op.drop_column('notes')
        batch_op.drop_column('due_at')
        batch_op.drop_column('priority_rank')
        batch_op.drop_column('customer_tier')
        batch_op.drop_column('language')
        batch_op.drop_column('skills')

    op.drop_table('routing_cursor')
    with op.batch_alter_table('change_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_change_event_queue'))
        batch_op.drop_index(batch_op.f('ix_change_event_at'))

    op.drop_table('change_event')
    op.drop_table('agent')
