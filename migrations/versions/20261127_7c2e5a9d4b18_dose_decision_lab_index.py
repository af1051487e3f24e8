"""dose decision: index on lab_result_id, so "blood counts waiting for a dose decision" is a lookup (issue 15)

Without it the dashboard's summary looked for a decision per blood count by scanning every signed
decision: 8.7 s at 8,000 participants on SQLite, over 100 s on PostgreSQL without statistics.

Revision ID: 7c2e5a9d4b18
Revises: 5e1c9a3f7b42
Create Date: 2026-11-27 02:00:00.000000

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '7c2e5a9d4b18'
down_revision: Union[str, Sequence[str], None] = '5e1c9a3f7b42'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index('ix_dosedecision_lab_result_id', 'dosedecision', ['lab_result_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_dosedecision_lab_result_id', table_name='dosedecision')
