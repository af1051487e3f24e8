"""site emergency number and platelet LLN

Revision ID: 5c1e7a2d9f40
Revises: d65bac2b6395
Create Date: 2026-11-26 19:40:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '5c1e7a2d9f40'
down_revision: Union[str, Sequence[str], None] = 'd65bac2b6395'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('site', schema=None) as batch_op:
        # Existing sites get 120, mainland China's medical emergency number.
        batch_op.add_column(sa.Column('emergency_phone', sqlmodel.sql.sqltypes.AutoString(length=16),
                                      server_default='120', nullable=False))
        batch_op.add_column(sa.Column('plt_lln', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.drop_column('plt_lln')
        batch_op.drop_column('emergency_phone')
