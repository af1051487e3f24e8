"""Time `rotate-key` over N participants on SQLite and PostgreSQL (issue 14, item 8).

    .venv/bin/python bench/rotate_key.py [--participants 5000] [--db sqlite --db postgresql]

Seeds N participants (each with a distinct phone and an emergency contact) and one staff TOTP
secret under the old key, then rotates to a new key and prints wall time, and again (the re-run:
nothing left to do).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime

from sqlalchemy import insert

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import scratch  # noqa: E402  (bench/, on the path as this script's folder)

from diary import audit, db, migrate  # noqa: E402
from diary.crypto import DataCipher  # noqa: E402
from diary.models import Participant, Site, StaffUser  # noqa: E402
from diary.services.keys import rotate  # noqa: E402

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def seed(engine, n: int, old: DataCipher) -> None:
    with engine.begin() as conn:
        conn.execute(insert(Site.__table__), [{"code": "B", "name": "Bench", "timezone": "Asia/Shanghai",
                                               "phone": "+8613900000000", "created_at": NOW}])
        conn.execute(insert(StaffUser.__table__), [{"email": "b@x", "name": "b", "role": "nurse",
                                                    "password_hash": "x", "is_active": True, "failed_logins": 0,
                                                    "auth_version": 1, "created_at": NOW,
                                                    "totp_secret_enc": old.encrypt("JBSWY3DPEHPK3PXP").decode()}])
        rows = []
        for i in range(n):
            phone = f"+86138{i:08d}"
            rows.append({"study_number": f"B{i:06d}", "site_id": 1, "cohort": "primary", "language": "zh",
                         "timezone": "Asia/Shanghai", "reminder_time": "08:00", "sms_opt_in": True,
                         "status": "active", "phone_enc": old.encrypt(phone), "phone_hash": old.lookup_hash(phone),
                         "emergency_phone_enc": old.encrypt(f"+86137{i:08d}"), "failed_pins": 0,
                         "auth_version": 1, "enrolled_by": 1, "enrolled_at": NOW})
        conn.execute(insert(Participant.__table__), rows)


def run(url: str, n: int) -> None:
    engine = db.make_engine(url)
    migrate.upgrade(engine)
    seed(engine, n, DataCipher("old key"))
    audit.configure(b"bench audit key")
    cipher = DataCipher("new key", ["old key"])
    for label in ("rotation", "re-run"):
        started = time.perf_counter()
        report = rotate(engine, cipher, now=NOW, batch=200)
        took = time.perf_counter() - started
        print(f"  {label}: {took:.2f} s, rewritten {report.rewritten}, left {report.remaining}")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=5000)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for backend in args.db or ["sqlite", "postgresql"]:
        print(f"{backend}, {args.participants} participants:")
        with scratch.database(backend, "bench_rotate") as url:
            if url:
                run(url, args.participants)


if __name__ == "__main__":
    main()
