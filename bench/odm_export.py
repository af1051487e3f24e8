"""Time and peak memory of the CDISC ODM 1.3.2 export at 2,000 participants × 4 courses.

    .venv/bin/python bench/odm_export.py [--participants 2000] [--backend sqlite --backend postgresql]

Seeds a fresh database per backend with bench/dashboard.py's bulk data (four 14-day courses per
participant, most days logged, three blood counts and one signed decision per course) plus, per
participant, a symptom report, an adverse event and a dispensing and a return per course. The export
then runs in a fresh child process writing to a file; the child reports the export's wall time and
its peak resident memory (ru_maxrss) against its resident memory just before the export started.
Streaming means the peak does not grow with the number of participants: run with --participants 500
to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import scratch  # noqa: E402  (bench/, on the path as this script's folder)
from dashboard import NOW, seed  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from diary import db, migrate  # noqa: E402
from diary.models import AdverseEvent, Course, DrugAccountability, SymptomReport  # noqa: E402


def seed_records(engine) -> None:
    with engine.begin() as conn:
        courses = conn.execute(select(Course.id, Course.participant_id, Course.start_date)).all()
        participants = sorted({p for _c, p, _d in courses})
        conn.execute(insert(SymptomReport), [{
            "participant_id": p, "noticed_at": NOW, "symptoms": [{"key": "bruising", "severity": "mild"}],
            "danger": False, "source": "participant", "received_at": NOW, "client_key": f"s{p}"}
            for p in participants])
        conn.execute(insert(AdverseEvent), [{
            "participant_id": p, "status": "recorded", "term": "bruising", "grade": 1, "onset_date": NOW.date(),
            "serious": False, "sae_criteria": [], "relatedness": "unlikely", "action": "dose_not_changed",
            "outcome": "recovering", "staff_id": 1, "entered_at": NOW} for p in participants])
        rows = []
        for course_id, p, day1 in courses:
            rows.append({"participant_id": p, "course_id": course_id, "kind": "dispensed", "on_date": day1,
                         "tablets": 28, "bottles": 1, "strength_mg": 2.5, "lot_number": "HT2611A",
                         "expiry": day1.replace(year=day1.year + 1), "warnings": [], "staff_id": 1,
                         "entered_at": NOW})
            rows.append({"participant_id": p, "course_id": course_id, "kind": "returned", "on_date": day1,
                         "tablets": 3, "bottles": None, "strength_mg": None, "lot_number": None, "expiry": None,
                         "warnings": [], "staff_id": 1, "entered_at": NOW})
        conn.execute(insert(DrugAccountability), rows)


def child(url: str, path: str) -> None:
    """Run in a fresh process: export to `path`, print JSON figures."""
    from sqlmodel import Session

    from diary import study
    from diary.services.odm import write_odm

    engine = db.make_engine(url)
    cfg = study.load_config()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with Session(engine) as s, open(path, "wb") as out:
        counts = write_odm(s, cfg, out, sites=None, actor="bench", now=NOW)
        s.commit()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "rss_before_kb": before, "rss_peak_kb": peak,
                      "bytes": os.path.getsize(path), **counts}))


def run(name: str, url: str, participants: int) -> None:
    engine = db.make_engine(url)
    migrate.upgrade(engine)
    print(f"{name}:")
    seed(engine, participants)
    seed_records(engine)
    engine.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, __file__, "--child", url, f"{tmp}/study.xml"],
                             check=True, capture_output=True, text=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  ODM export of {figures['participants']} participants: {figures['seconds']:.1f} s, "
          f"{figures['bytes'] / 1e6:.0f} MB written; peak RSS {figures['rss_peak_kb'] / 1024:.0f} MiB "
          f"({(figures['rss_peak_kb'] - figures['rss_before_kb']) / 1024:.0f} MiB above the process before "
          f"the export)")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=2000)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for backend in args.backend or ["sqlite", "postgresql"]:
        with scratch.database(backend) as url:
            if url:
                run("SQLite" if backend == "sqlite" else "PostgreSQL", url, args.participants)


if __name__ == "__main__":
    main()
