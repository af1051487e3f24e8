"""scheduler heartbeat and outbox retry columns

Revision ID: 448d93c54abd
Revises: 8ee79e38bc9d
Create Date: 2026-11-25 11:06:43.613878

"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

import diary.sqltypes


# revision identifiers, used by Alembic.
revision: str = '448d93c54abd'
down_revision: Union[str, Sequence[str], None] = '8ee79e38bc9d'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('schedulerheartbeat',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', diary.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', diary.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('host', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('schedulerheartbeat', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_schedulerheartbeat_at'), ['at'], unique=False)

    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('course_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('course_day', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', diary.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('delivered_at', diary.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_message_course_id'), ['course_id'], unique=False)
        batch_op.create_foreign_key('fk_message_course_id_course', 'course', ['course_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_constraint('fk_message_course_id_course', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_message_course_id'))
        batch_op.drop_column('delivered_at')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('course_day')
        batch_op.drop_column('course_id')

    with op.batch_alter_table('schedulerheartbeat', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_schedulerheartbeat_at'))

    op.drop_table('schedulerheartbeat')
