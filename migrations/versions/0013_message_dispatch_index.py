"""Messages by the time they were handed over: the relay follows them from where it last looked.

Revision ID: 0013
Revises: 0012
"""

from alembic import op


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_dispatched_at', ['dispatched_at'], unique=False)


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_dispatched_at')
