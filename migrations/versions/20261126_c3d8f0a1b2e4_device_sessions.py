"""device sessions: a server-side record of every signed-in phone or browser

Revision ID: c3d8f0a1b2e4
Revises: b7c1e2a9f4d3
Create Date: 2026-11-26 20:05:00.000000

"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

import diary.sqltypes


# revision identifiers, used by Alembic.
revision: str = 'c3d8f0a1b2e4'
down_revision: Union[str, Sequence[str], None] = 'b7c1e2a9f4d3'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'devicesession',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('participant_id', sa.Integer(), nullable=True),
        sa.Column('staff_id', sa.Integer(), nullable=True),
        sa.Column('device', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('created_at', diary.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', diary.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ended_at', diary.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column('ended_reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.ForeignKeyConstraint(['participant_id'], ['participant.id'], ),
        sa.ForeignKeyConstraint(['staff_id'], ['staffuser.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    with op.batch_alter_table('devicesession', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_devicesession_participant_id'), ['participant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_devicesession_staff_id'), ['staff_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('devicesession', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_devicesession_staff_id'))
        batch_op.drop_index(batch_op.f('ix_devicesession_participant_id'))
    op.drop_table('devicesession')
