"""audit trail: lock a chain and read its head in one round trip on PostgreSQL (issue 15)

`audit_lock_chain_head(lock_key, chain_name)` takes the chain's transaction-level advisory lock and
then reads the chain's newest hash, in one call: a check-off's append sends one statement fewer.
The read is a statement of its own inside a VOLATILE function, so under READ COMMITTED it takes a
fresh snapshot after the lock is granted, and sees the event of an append it waited for. (One
plain SELECT of both would read with the snapshot taken before the wait, and link to a stale head.)
SQLite has no functions of this kind and needs none: it keeps its write lock and SELECT.

Revision ID: 4f8a2c6e1d90
Revises: 7c2e5a9d4b18
Create Date: 2026-11-27 06:30:00.000000

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '4f8a2c6e1d90'
down_revision: Union[str, Sequence[str], None] = '7c2e5a9d4b18'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE OR REPLACE FUNCTION audit_lock_chain_head(lock_key bigint, chain_name text)
        RETURNS text LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            head text;
        BEGIN
            PERFORM pg_advisory_xact_lock(lock_key);
            -- A new statement after the wait: a fresh snapshot (READ COMMITTED, VOLATILE).
            SELECT hash INTO head FROM auditevent WHERE chain = chain_name ORDER BY id DESC LIMIT 1;
            RETURN head;
        END
        $$
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS audit_lock_chain_head(bigint, text)")
