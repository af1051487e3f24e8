"""dose change acknowledgement and flag detail key

Revision ID: d0c4a7e91b35
Revises: f1a2b3c4d5e6
Create Date: 2026-11-26 22:05:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

import diary.sqltypes


# revision identifiers, used by Alembic.
revision: str = 'd0c4a7e91b35'
down_revision: Union[str, Sequence[str], None] = 'f1a2b3c4d5e6'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('dosechangeack',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('decision_id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('acknowledged_at', diary.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['decision_id'], ['dosedecision.id'], ),
    sa.ForeignKeyConstraint(['participant_id'], ['participant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('decision_id')
    )
    with op.batch_alter_table('dosechangeack', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dosechangeack_participant_id'), ['participant_id'], unique=False)

    with op.batch_alter_table('flag', schema=None) as batch_op:
        batch_op.add_column(sa.Column('detail_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('detail_params', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('flag', schema=None) as batch_op:
        batch_op.drop_column('detail_params')
        batch_op.drop_column('detail_key')

    with op.batch_alter_table('dosechangeack', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dosechangeack_participant_id'))

    op.drop_table('dosechangeack')
