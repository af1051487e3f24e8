"""message templates and provider: every SMS is a template key + params + language, and the
provider that accepted it is recorded (issue 13)

Revision ID: 9d4e2f7a1c30
Revises: 9d4e2b7c1a30
Create Date: 2026-11-26 22:10:00.000000

"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

import diary.sqltypes


# revision identifiers, used by Alembic.
revision: str = '9d4e2f7a1c30'
down_revision: Union[str, Sequence[str], None] = '9d4e2b7c1a30'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('message') as batch:
        batch.add_column(sa.Column('template', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch.add_column(sa.Column('template_params', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
        batch.add_column(sa.Column('attempted_at', diary.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('message') as batch:
        batch.drop_column('provider')
        batch.drop_column('attempted_at')
        batch.drop_column('language')
        batch.drop_column('template_params')
        batch.drop_column('template')
