"""Messages of every kind: a type, and the kind's details (media file, location, poll...).

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('type', sa.String(length=16), server_default='text', nullable=False))
        batch_op.add_column(sa.Column('payload', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('payload')
        batch_op.drop_column('type')
