"""FAQ knowledge base: entries, published index versions, and the knowledge base's revision

Revision ID: 0010
Revises: 0004
Create Date: 2026-11-27

faq_knowledge_base has exactly one row, created here: every change to the knowledge base
bumps its revision, and it names the index version that answers now.
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('faq_entry',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('questions', sa.JSON(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('department', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=35), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('kb_revision', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('faq_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_faq_entry_department'), ['department'], unique=False)

    op.create_table('faq_index_version',
    sa.Column('version', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('kb_revision', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('published_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.Column('calibrated', sa.Boolean(), nullable=False),
    sa.Column('build_seconds', sa.Float(), nullable=False),
    sa.Column('info', sa.JSON(), nullable=False),
    sa.Column('calibration', sa.JSON(), nullable=True),
    sa.Column('artifact', sa.LargeBinary(), nullable=True),
    sa.Column('artifact_bytes', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('version')
    )
    with op.batch_alter_table('faq_index_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_faq_index_version_kb_revision'), ['kb_revision'], unique=False)
        batch_op.create_index(batch_op.f('ix_faq_index_version_published_at'), ['published_at'], unique=False)

    knowledge_base = op.create_table('faq_knowledge_base',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('published_revision', sa.Integer(), nullable=False),
    sa.Column('current_version', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('published_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('publish_error', sa.Text(), nullable=True),
    sa.Column('threshold_overrides', sa.JSON(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.bulk_insert(knowledge_base, [{
        'id': 1, 'instance': uuid.uuid4().hex, 'revision': 0, 'published_revision': 0,
        'threshold_overrides': {}, 'updated_at': datetime.now(UTC),
    }])


def downgrade() -> None:
    op.drop_table('faq_knowledge_base')
    with op.batch_alter_table('faq_index_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_faq_index_version_published_at'))
        batch_op.drop_index(batch_op.f('ix_faq_index_version_kb_revision'))

    op.drop_table('faq_index_version')
    with op.batch_alter_table('faq_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_faq_entry_department'))

    op.drop_table('faq_entry')
