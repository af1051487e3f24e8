"""SQL statements per participant request: the today page and a check-off read each course once.

Issue 15 sets at most 5 statements for the today page and 8 for a check-off. The budgets are where
the code stands, below those: the today page reads the participant with their device session and
site (one statement) and their course records (one UNION); a check-off reads the participant, the
course's record, inserts the log (INSERT ... ON CONFLICT DO NOTHING RETURNING), locks the
participant's audit chain and reads its head (on PostgreSQL in that INSERT's RETURNING, on SQLite
two statements after it), and appends the event. The card it shows next is derived from the
record it wrote against. A change that reads a course twice again, or reads back what it just
wrote, fails here.
"""

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, text

from diary.models import DoseLog
from diary.services import course_records
from tests.conftest import check_off_form

TODAY_BUDGET = 2
CHECKOFF_BUDGET = {"postgresql": 4, "sqlite": 6}


def test_the_today_page_and_a_check_off_stay_within_their_statement_budgets(client, auth, backend, world,
                                                                            statements):
    assert auth.participant("pa").status_code == 302
    statements.clear()
    html = client.get("/").get_data(as_text=True)
    today = len(statements)
    base, token = check_off_form(html)
    statements.clear()
    r = client.post(f"{base}/taken", data={"client_key": "budget-check-1", "csrf_token": token},
                    headers={"HX-Request": "true"})
    assert r.status_code == 200 and "You took it" in r.get_data(as_text=True)
    check_off = len(statements)
    assert today <= TODAY_BUDGET, f"today page: {today} statements"
    assert check_off <= CHECKOFF_BUDGET[backend], f"check-off: {check_off} statements"
    # The course's facts are read once for a check-off: the card it shows after the write is the
    # record it acted on with the new log in it.
    decisions = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "FROM dosedecision" in s]
    assert len(decisions) == 1


@pytest.mark.postgres
def test_a_participants_courses_are_read_by_index_however_large_the_study_grows(app, session, world):
    # Every course with hundreds of records of one day (a day taken and undone again and again),
    # and statistics that say so: PostgreSQL would hash a scan of every participant's logs to find
    # this participant's current ones, and each page and check-off would grow with the study.
    courses = session.exec(text("SELECT id FROM course")).scalars().all()
    assert len(courses) > 1  # other participants' logs are in the table too
    engine = app.extensions["diary.engine"]
    with engine.begin() as conn:
        for course_id in courses:
            previous = None
            for n in range(300):
                previous = conn.execute(insert(DoseLog).values(
                    course_id=course_id, course_day=9, outcome=("taken", "retracted")[n % 2], source="participant",
                    received_at=datetime(2026, 12, 1, tzinfo=UTC), client_key=f"plan-{course_id}-{n}",
                    supersedes_id=previous).returning(DoseLog.id)).scalar_one()
        conn.exec_driver_sql("ANALYZE")
    participant = world.participants["pa"]
    statement = course_records._plan_by("participant").union.compile(dialect=engine.dialect)
    with engine.connect() as conn:
        plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + statement.string,
                                              statement.construct_params({"key": participant.id})).scalars())
        records = course_records.participant_records(session, participant.id)
    assert "Seq Scan on doselog" not in plan and "Hash Anti Join" not in plan, plan
    # The newest of the 300, a retraction, is the day's record; the day has no outcome.
    course = world.courses["pa"].id
    assert records[course].heads[9].outcome == "retracted" and 9 not in records[course].outcomes


def test_the_per_request_course_loads_are_short_enough_for_psycopg_to_keep_their_conversion():
    # psycopg converts a statement's %(name)s placeholders once and keeps the result, but only
    # for a statement of at most MAX_CACHED_STATEMENT_LENGTH bytes: a longer one is parsed anew on
    # every execution, and these two run on every participant page and check-off.
    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH
    from sqlalchemy.dialects import postgresql

    for key in ("participant", "course"):
        sql = str(course_records._plan_by(key).union.compile(dialect=postgresql.dialect()))
        assert len(sql.encode()) <= MAX_CACHED_STATEMENT_LENGTH, (key, len(sql))
