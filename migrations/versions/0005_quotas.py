"""Message quotas: a daily or trial limit per plan, usage counters, and the slot each message holds.

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# (daily limit, trial total, trial days); None is unlimited. Free is the trial: a fixed
# total over a fixed window from signup, as aulm's trial. Paid plans reset at UTC midnight.
QUOTAS = {
    "free": (None, 100, 7),
    "starter": (1000, None, None),
    "growth": (10000, None, None),
    "business": (100000, None, None),
    "enterprise": (None, None, None),
}


def upgrade():
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('daily_message_limit', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('trial_message_limit', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('trial_days', sa.Integer(), nullable=True))
    plans = sa.table(
        'plans',
        sa.column('id', sa.String),
        sa.column('daily_message_limit', sa.Integer),
        sa.column('trial_message_limit', sa.Integer),
        sa.column('trial_days', sa.Integer),
    )
    for plan_id, (daily, trial, days) in QUOTAS.items():
        op.execute(
            plans.update()
            .where(plans.c.id == plan_id)
            .values(daily_message_limit=daily, trial_message_limit=trial, trial_days=days)
        )

    op.create_table('quota_usage',
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('used', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'period')
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quota_period', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('quota_period')
    op.drop_table('quota_usage')
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_column('trial_days')
        batch_op.drop_column('trial_message_limit')
        batch_op.drop_column('daily_message_limit')
