"""sms budget: a site-wide ceiling on anonymous-triggered SMS

Revision ID: b7c1e2a9f4d3
Revises: ea709e678cad
Create Date: 2026-11-26 19:50:00.000000

"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

import diary.sqltypes


# revision identifiers, used by Alembic.
revision: str = 'b7c1e2a9f4d3'
down_revision: Union[str, Sequence[str], None] = 'ea709e678cad'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'smsbudget',
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('window_start', diary.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column('used', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )


def downgrade() -> None:
    op.drop_table('smsbudget')
