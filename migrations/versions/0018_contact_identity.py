"""One identity per contact and history backfill: a contact's LID beside its phone number,
and messages marked as history, with the chat they belong to.

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
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chat', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('history', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index('ix_messages_session_chat', ['session_id', 'chat'], unique=False)


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_session_chat')
        batch_op.drop_column('history')
        batch_op.drop_column('chat')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_constraint('uq_contacts_session_lid', type_='unique')
        batch_op.drop_column('lid')
