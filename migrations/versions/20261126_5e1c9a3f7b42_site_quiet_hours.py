"""site quiet hours: each site may set its own window for participant messages (issue 14, item 1)

Revision ID: 5e1c9a3f7b42
Revises: 9d4e2f7a1c30
Create Date: 2026-11-26 23:00:00.000000

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '5e1c9a3f7b42'
down_revision: Union[str, Sequence[str], None] = '9d4e2f7a1c30'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# Both ends or neither: NULL means the study's quiet hours (study.toml).
CHECK = "(quiet_start IS NULL) = (quiet_end IS NULL)"


def upgrade() -> None:
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quiet_start', sa.Time(), nullable=True))
        batch_op.add_column(sa.Column('quiet_end', sa.Time(), nullable=True))
        batch_op.create_check_constraint('ck_site_quiet_pair', CHECK)


def downgrade() -> None:
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.drop_constraint('ck_site_quiet_pair', type_='check')
        batch_op.drop_column('quiet_end')
        batch_op.drop_column('quiet_start')
