"""Shared state in the database: stored files in parts, the simulator's owed receipts and the
neonize engine's sent ledger, so that no node keeps on its own disk what another needs.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'stored_files',
        sa.Column('name', sa.String(length=300), nullable=False),
        sa.Column('part', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('name', 'part'),
    )
    op.create_table(
        'simulator_receipts',
        sa.Column('session_id', sa.String(length=64), nullable=False),
        sa.Column('wa_id', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('due', sa.Float(), nullable=False),
        sa.Column('reported_at', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('session_id', 'wa_id', 'status'),
    )
    with op.batch_alter_table('simulator_receipts', schema=None) as batch_op:
        batch_op.create_index('ix_simulator_receipts_reported_at', ['reported_at'], unique=False)
    op.create_table(
        'neonize_sent',
        sa.Column('session_id', sa.String(length=64), nullable=False),
        sa.Column('wa_id', sa.String(length=64), nullable=False),
        sa.Column('whatsapp_id', sa.String(length=128), nullable=True),
        sa.Column('sent_at', sa.Float(), nullable=True),
        sa.Column('attempted_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('session_id', 'wa_id'),
    )
    with op.batch_alter_table('neonize_sent', schema=None) as batch_op:
        batch_op.create_index('ix_neonize_sent_whatsapp_id', ['session_id', 'whatsapp_id'], unique=False)


def downgrade():
    with op.batch_alter_table('neonize_sent', schema=None) as batch_op:
        batch_op.drop_index('ix_neonize_sent_whatsapp_id')
    op.drop_table('neonize_sent')
    with op.batch_alter_table('simulator_receipts', schema=None) as batch_op:
        batch_op.drop_index('ix_simulator_receipts_reported_at')
    op.drop_table('simulator_receipts')
    op.drop_table('stored_files')
