"""participant emergency contact; staff must change password

Revision ID: 3b9e4c7d1a20
Revises: d0c4a7e91b35
Create Date: 2026-11-26 22:00:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '3b9e4c7d1a20'
down_revision: Union[str, Sequence[str], None] = 'd0c4a7e91b35'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('emergency_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('emergency_relation', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('emergency_phone_enc', sa.LargeBinary(), nullable=True))
    with op.batch_alter_table('staffuser', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), server_default=sa.text('false'),
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('staffuser', schema=None) as batch_op:
        batch_op.drop_column('must_change_password')
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.drop_column('emergency_phone_enc')
        batch_op.drop_column('emergency_relation')
        batch_op.drop_column('emergency_name')
