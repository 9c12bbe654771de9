"""One identity per contact: a contact's LID beside its phone number.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lid', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint('uq_contacts_session_lid', ['session_id', 'lid'])


def downgrade():
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_constraint('uq_contacts_session_lid', type_='unique')
        batch_op.drop_column('lid')
