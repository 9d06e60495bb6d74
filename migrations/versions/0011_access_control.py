"""Access control in the database: users, departments, Casbin rules and memberships, the
policy version, the access audit; tokens belong to users and may expire

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

Tokens made before this migration carried a role and a department. Each becomes a user
holding that role in that department; an empty department, which used to mean every
department, becomes the explicit `*`. The rules are seeded from policies/policy.csv. Users appear in Casbin's rows as
`user:<name>`.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

SEED_POLICY = Path(__file__).resolve().parents[2] / "policies" / "policy.csv"
SEED_DEPARTMENTS = {
    "general": "Everything not yet triaged elsewhere.",
    "logistics": "Parcels, carriers and deliveries.",
    "billing": "Payments, invoices and refunds.",
    "returns": "Return requests and their refunds.",
    "supervisors": "Escalations from every department.",
}


def _seed_rules() -> list[list[str]]:
    from policies.store import parse_policy

    return [list(rule) for rule in parse_policy(SEED_POLICY.read_text())]


def upgrade() -> None:
    now = datetime.now(UTC)
    user_account = op.create_table('user_account',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('display_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('disabled_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    department = op.create_table('department',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    casbin_rule = op.create_table('casbin_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ptype', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('v0', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('v1', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('v2', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('v3', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('v4', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('v5', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('casbin_rule', schema=None) as batch_op:
        batch_op.create_index('ix_casbin_rule_ptype_v0', ['ptype', 'v0'], unique=False)
    policy_version = op.create_table('policy_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    access_audit = op.create_table('access_audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('policy_version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('access_audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_audit_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_audit_subject'), ['subject'], unique=False)

    op.bulk_insert(department, [{"name": n, "description": d, "created_at": now} for n, d in SEED_DEPARTMENTS.items()])
    rules = _seed_rules()
    # Every row names every column: an executemany takes its columns from the first row.
    op.bulk_insert(casbin_rule, [dict(ptype=r[0], **{f"v{i}": (r[1:] + [None] * 6)[i] for i in range(6)})
                                 for r in rules])

    # Every token of the old scheme becomes a user with the role it carried.
    conn = op.get_bind()
    old = conn.execute(sa.text('SELECT DISTINCT "user", role, department FROM api_token')).fetchall()
    users = sorted({row[0] for row in old})
    if users:
        op.bulk_insert(user_account, [{"name": u, "display_name": "", "created_at": now} for u in users])
    grants = sorted({(u, role, dept or "*") for u, role, dept in old})
    known = set(SEED_DEPARTMENTS)
    missing = sorted({d for _, _, d in grants if d != "*" and d not in known})
    if missing:
        op.bulk_insert(department, [{"name": d, "description": "", "created_at": now} for d in missing])
    if grants:
        op.bulk_insert(casbin_rule, [{"ptype": "g", "v0": f"user:{u}", "v1": r, "v2": d, "v3": None, "v4": None, "v5": None}
                                     for u, r, d in grants])
    op.bulk_insert(policy_version, [{"id": 1, "version": 1, "changed_at": now}])
    op.bulk_insert(access_audit, [{"at": now, "actor": "migration", "action": "policy.seed", "subject": "policy",
                                   "before": None, "after": rules, "policy_version": 1}])

    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.drop_column('role')
        batch_op.drop_column('department')
        batch_op.create_foreign_key('fk_api_token_user', 'user_account', ['user'], ['name'])
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.alter_column('label', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_constraint('fk_api_token_user', type_='foreignkey')
        batch_op.add_column(sa.Column('department', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False,
                                      server_default='customer'))
        batch_op.drop_column('expires_at')
        batch_op.drop_column('label')
    # A token keeps the first role its user held (tokens of the old scheme had one).
    conn = op.get_bind()
    for subject, role, dept in conn.execute(sa.text(
            "SELECT v0, v1, v2 FROM casbin_rule WHERE ptype = 'g' AND v0 LIKE 'user:%' ORDER BY id")).fetchall():
        user = subject.removeprefix("user:")
        conn.execute(sa.text('UPDATE api_token SET role = :role, department = :dept WHERE "user" = :user '
                             "AND role = 'customer' AND department = ''"),
                     {"role": role, "dept": "" if dept == "*" else dept, "user": user})
    with op.batch_alter_table('access_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_audit_subject'))
        batch_op.drop_index(batch_op.f('ix_access_audit_at'))
    op.drop_table('access_audit')
    op.drop_table('policy_version')
    with op.batch_alter_table('casbin_rule', schema=None) as batch_op:
        batch_op.drop_index('ix_casbin_rule_ptype_v0')
    op.drop_table('casbin_rule')
    op.drop_table('department')
    op.drop_table('user_account')
