"""Quota ledger: a message holds its own slot, the usage row counts only slots kept without one.

Revision ID: 0011
Revises: 0010
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

HELD = (
    "(SELECT count(*) FROM messages WHERE messages.user_id = quota_usage.user_id"
    " AND messages.quota_period = quota_usage.period)"
)


def upgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_user_quota_period', ['user_id', 'quota_period'], unique=False)
    with op.batch_alter_table('quota_usage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kept', sa.Integer(), nullable=False, server_default='0'))
    # What was counted beyond the messages that hold a slot were the slots kept without one.
    op.execute(f"UPDATE quota_usage SET kept = CASE WHEN used > {HELD} THEN used - {HELD} ELSE 0 END")
    with op.batch_alter_table('quota_usage', schema=None) as batch_op:
        batch_op.drop_column('used')


def downgrade():
    with op.batch_alter_table('quota_usage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('used', sa.Integer(), nullable=False, server_default='0'))
    op.execute(f"UPDATE quota_usage SET used = kept + {HELD}")
    with op.batch_alter_table('quota_usage', schema=None) as batch_op:
        batch_op.drop_column('kept')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_user_quota_period')
