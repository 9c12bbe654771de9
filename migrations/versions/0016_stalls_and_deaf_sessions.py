"""Stalled messages and deaf sessions: when a message was found stuck and why (each message
once), and how often a session was found deaf and reconnected.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stalled_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('stall_reason', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_messages_status_updated_at', ['status', 'updated_at'], unique=False)
    with op.batch_alter_table('wa_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deaf_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('deaf_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('wa_sessions', schema=None) as batch_op:
        batch_op.drop_column('deaf_at')
        batch_op.drop_column('deaf_count')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_status_updated_at')
        batch_op.drop_column('stall_reason')
        batch_op.drop_column('stalled_at')
