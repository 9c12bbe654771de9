"""Send governor: each session's pace settings, when it was paired (for warm-up), why it is paused; scheduled batches.

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('wa_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pace', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('paired_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('paused_reason', sa.String(length=500), nullable=True))
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_status_send_after', ['status', 'send_after'], unique=False)
    with op.batch_alter_table('bulk_batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('bulk_batches', schema=None) as batch_op:
        batch_op.drop_column('send_at')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_status_send_after')
    with op.batch_alter_table('wa_sessions', schema=None) as batch_op:
        batch_op.drop_column('paused_reason')
        batch_op.drop_column('paused_at')
        batch_op.drop_column('paired_at')
        batch_op.drop_column('pace')
