"""Webhook lanes: deliveries hold their endpoint's slots; endpoints remember since when they fail.

Revision ID: 0012
Revises: 0011
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True))
    # An endpoint failing now has failed since its last failure at least.
    op.execute(
        "UPDATE webhooks SET failing_since = last_failure_at"
        " WHERE consecutive_failures > 0 AND last_failure_at IS NOT NULL"
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_webhook_deliveries_webhook_next', ['webhook_id', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_webhook_deliveries_claimed', ['claimed_until'], unique=False)


def downgrade():
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_claimed')
        batch_op.drop_index('ix_webhook_deliveries_webhook_next')
        batch_op.drop_column('claimed_until')
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_column('failing_since')
