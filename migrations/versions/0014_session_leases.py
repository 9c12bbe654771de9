"""Session leases: the host that owns a session holds it until `lease_until`, under a
generation that grows with every new holder (its fencing token).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('wa_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_generation', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_wa_sessions_engine_host', ['engine_host'], unique=False)


def downgrade():
    with op.batch_alter_table('wa_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_wa_sessions_engine_host')
        batch_op.drop_column('lease_until')
        batch_op.drop_column('lease_generation')
