"""inbox indexes: one per sort of GET /tasks

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

Each index holds a queue's tasks of one status in the order of one inbox sort, ending in
(created_at, id) like the keyset cursor, so every page is a single index range at any
depth. The created-order one supersedes ix_task_queue_status_created, which lacked the id.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_task_inbox_created', 'task', ['queue', 'status', 'created_at', 'id'])
    op.create_index('ix_task_inbox_priority', 'task',
                    ['queue', 'status', sa.text('priority_rank DESC'), 'created_at', 'id'])
    op.create_index('ix_task_inbox_due', 'task', ['queue', 'status', 'due_at', 'created_at', 'id'])
    op.drop_index('ix_task_queue_status_created', table_name='task')


def downgrade() -> None:
    op.create_index('ix_task_queue_status_created', 'task', ['queue', 'status', 'created_at'])
    op.drop_index('ix_task_inbox_due', table_name='task')
    op.drop_index('ix_task_inbox_priority', table_name='task')
    op.drop_index('ix_task_inbox_created', table_name='task')
