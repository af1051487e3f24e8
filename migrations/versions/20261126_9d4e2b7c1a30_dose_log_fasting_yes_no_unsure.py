"""dose log: fasting is yes / no / unsure (issue 10, item 11)

Revision ID: 9d4e2b7c1a30
Revises: 3b9e4c7d1a20
Create Date: 2026-11-26 22:20:00.000000

The boolean `fasting` (True, or NULL when the participant did not tap) becomes a short text:
True → 'yes', False → 'no', NULL stays NULL (not said). diary/audit.py still verifies the rows
fingerprinted before this change (audit.LEGACY_ROW_FORMS).
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '9d4e2b7c1a30'
down_revision: Union[str, Sequence[str], None] = '3b9e4c7d1a20'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CHECK = "fasting IN ('yes', 'no', 'unsure')"


def upgrade() -> None:
    with op.batch_alter_table('doselog', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fasting_answer', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
    # A raw statement: the application refuses UPDATE of clinical rows, a migration converts them.
    op.execute("UPDATE doselog SET fasting_answer = CASE WHEN fasting IS NULL THEN NULL "
               "WHEN fasting THEN 'yes' ELSE 'no' END")
    with op.batch_alter_table('doselog', schema=None) as batch_op:
        batch_op.drop_column('fasting')
        batch_op.alter_column('fasting_answer', new_column_name='fasting', existing_nullable=True)
    with op.batch_alter_table('doselog', schema=None) as batch_op:
        batch_op.create_check_constraint('ck_doselog_fasting', CHECK)


def downgrade() -> None:
    # 'unsure' has no boolean form: it becomes NULL (not said), as before this revision.
    with op.batch_alter_table('doselog', schema=None) as batch_op:
        batch_op.drop_constraint('ck_doselog_fasting', type_='check')
        batch_op.add_column(sa.Column('fasting_bool', sa.Boolean(), nullable=True))
    op.execute("UPDATE doselog SET fasting_bool = CASE WHEN fasting = 'yes' THEN TRUE "
               "WHEN fasting = 'no' THEN FALSE ELSE NULL END")
    with op.batch_alter_table('doselog', schema=None) as batch_op:
        batch_op.drop_column('fasting')
        batch_op.alter_column('fasting_bool', new_column_name='fasting', existing_type=sa.Boolean(),
                              existing_nullable=True)
