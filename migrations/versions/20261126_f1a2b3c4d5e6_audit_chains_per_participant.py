"""audit trail: keyed chains per participant, clinical row hashes

Revision ID: f1a2b3c4d5e6
Revises: c63e646e24d4
Create Date: 2026-11-26 20:55:00.000000

Events already stored become the chain "legacy": diary/audit.py keeps verifying them with the old
unkeyed SHA-256 algorithm and appends nothing to it, so an existing database still verifies.
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


# revision identifiers, used by Alembic.
revision: str = 'f1a2b3c4d5e6'
down_revision: Union[str, Sequence[str], None] = 'c63e646e24d4'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('auditevent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False,
                                      server_default='legacy'))
        batch_op.add_column(sa.Column('row_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    with op.batch_alter_table('auditevent', schema=None) as batch_op:
        # The default only labelled the existing rows; every new event names its chain.
        batch_op.alter_column('chain', server_default=None)
        batch_op.create_unique_constraint('uq_auditevent_chain_prev_hash', ['chain', 'prev_hash'])
        batch_op.create_index('ix_auditevent_chain_id', ['chain', 'id'], unique=False)
        batch_op.create_index('ix_auditevent_entity_entity_id', ['entity', 'entity_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('auditevent', schema=None) as batch_op:
        batch_op.drop_index('ix_auditevent_entity_entity_id')
        batch_op.drop_index('ix_auditevent_chain_id')
        batch_op.drop_constraint('uq_auditevent_chain_prev_hash', type_='unique')
        batch_op.drop_column('row_hash')
        batch_op.drop_column('chain')
