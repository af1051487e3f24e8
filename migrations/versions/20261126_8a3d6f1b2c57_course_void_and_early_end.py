"""course void and early end

Revision ID: 8a3d6f1b2c57
Revises: 5c1e7a2d9f40
Create Date: 2026-11-26 19:45:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

import diary.sqltypes


# revision identifiers, used by Alembic.
revision: str = '8a3d6f1b2c57'
down_revision: Union[str, Sequence[str], None] = '5c1e7a2d9f40'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('course', schema=None) as batch_op:
        batch_op.add_column(sa.Column('voided_at', diary.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('voided_by', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('void_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.add_column(sa.Column('last_day', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('ended_early_at', diary.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('ended_early_by', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('end_early_reason', sqlmodel.sql.sqltypes.AutoString(length=500),
                                      nullable=True))
        batch_op.create_foreign_key('fk_course_voided_by_staffuser', 'staffuser', ['voided_by'], ['id'])
        batch_op.create_foreign_key('fk_course_ended_early_by_staffuser', 'staffuser', ['ended_early_by'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('course', schema=None) as batch_op:
        batch_op.drop_constraint('fk_course_ended_early_by_staffuser', type_='foreignkey')
        batch_op.drop_constraint('fk_course_voided_by_staffuser', type_='foreignkey')
        batch_op.drop_column('end_early_reason')
        batch_op.drop_column('ended_early_by')
        batch_op.drop_column('ended_early_at')
        batch_op.drop_column('last_day')
        batch_op.drop_column('void_reason')
        batch_op.drop_column('voided_by')
        batch_op.drop_column('voided_at')
