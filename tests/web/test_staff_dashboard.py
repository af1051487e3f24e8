"""The adherence grid and the flag queue; the grid's query count does not grow with participants."""

import re
from datetime import timedelta
from html import unescape as html_unescape

import pytest
from sqlalchemy import event
from sqlmodel import select

from diary.models import AuditEvent, Flag
from diary.services import adherence, dosing, enrolment
from diary.services.flags import raise_flag
from tests.web.staff_helpers import english  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("english")


def test_the_grid_shows_each_day_as_colour_and_symbol_and_text(client, auth, world, session, app, clock):
    cfg = app.extensions["diary.study"]
    pa, course = world.participants["pa"], world.courses["pa"]
    dosing.log_dose(session, cfg, participant=pa, course_id=course.id, day=2, outcome="taken", client_key="k1",
                    source="staff", now=clock.now, staff_id=world.staff["nurse_a"].id, correction_reason="paper diary",
                    taken_at=clock.now - timedelta(days=1))
    session.commit()
    auth.staff("nurse_a")
    html = client.get("/staff/adherence").get_data(as_text=True)
    assert 'class="st-taken"><span class="sym" aria-hidden="true">✓</span><span class="vh">Taken</span>' in html
    assert 'class="st-missed"><span class="sym" aria-hidden="true">!</span><span class="vh">Missed</span>' in html
    # The headline comes straight after the first screenful, from the address the page names.
    summary = _summary_url(html)
    assert summary == "/staff/adherence/summary?state=running"
    figures = client.get(summary, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in figures
    # Day 1 missed, day 2 taken; day 3 (today) is due and not counted yet.
    assert "50.0 %" in figures
    # Without JavaScript the same address is a page of its own.
    assert "50.0 %" in client.get(summary).get_data(as_text=True)


def _summary_url(html: str) -> str:
    return html_unescape(re.search(r'id="adherence-summary" hx-get="([^"]+)" hx-trigger="load"', html).group(1))


def test_problems_come_first(app, session, world, clock):
    cfg = app.extensions["diary.study"]
    pa, pb = world.participants["pa"], world.participants["pb"]
    for day in (1, 2):
        dosing.log_dose(session, cfg, participant=pb, course_id=world.courses["pb"].id, day=day, outcome="taken",
                        client_key=f"pb{day}", source="staff", now=clock.now, staff_id=world.staff["admin"].id,
                        correction_reason="paper", taken_at=clock.now - timedelta(days=3 - day))
    raise_flag(session, key="x", kind="missed_dose", site_id=pa.site_id, participant_id=pa.id, detail="d",
               now=clock.now)
    session.commit()
    grid = adherence.build_grid(session, cfg, clock.now, None)
    assert [row.study_number for row in grid.rows] == ["PA", "PB"]
    assert grid.rows[0].open_flags == 1 and grid.rows[1].rate.percent == 100.0


def test_filters_narrow_the_grid_through_htmx_without_a_reload(client, auth, world):
    auth.staff("admin")
    r = client.get("/staff/adherence?flagged=1", headers={"HX-Request": "true"})
    html = r.get_data(as_text=True)
    assert "<html" not in html and "No courses match these filters." in html
    assert "<html" in client.get("/staff/adherence?flagged=1").get_data(as_text=True)


def test_overdue_and_upcoming_draws_are_listed(app, session, world, clock):
    cfg = app.extensions["diary.study"]
    pa = world.participants["pa"]
    later = enrolment.open_course(session, cfg, participant=pa, adc_drug="other",
                                  infusion_date=world.courses["pa"].start_date + timedelta(days=14),
                                  staff_id=world.staff["nurse_a"].id, now=clock.now)
    session.commit()
    grid = adherence.build_grid(session, cfg, clock.now + timedelta(days=14), None)
    by_course = {row.course_id: row for row in grid.rows}
    assert [d for d, _ in by_course[world.courses["pa"].id].overdue_draws] == [7, 10, 14]
    assert not by_course[later.id].upcoming_draws
    grid = adherence.build_grid(session, cfg, clock.now + timedelta(days=19), None)
    assert [d for d, _ in {r.course_id: r for r in grid.rows}[later.id].upcoming_draws] == [7]


def _flag(session, world, clock):
    pa = world.participants["pa"]
    flag = raise_flag(session, key="missed:1", kind="missed_dose", site_id=pa.site_id, participant_id=pa.id,
                      detail="Day 2 not logged", now=clock.now)
    session.commit()
    return flag


def test_a_flag_is_acknowledged_with_a_note_by_a_named_person_and_stays_in_history(client, auth, world, session,
                                                                                      clock):
    flag = _flag(session, world, clock)
    auth.staff("nurse_a")
    r = client.post(f"/staff/flags/{flag.id}/acknowledge", headers={"HX-Request": "true"},
                    data={"csrf_token": auth.csrf("/staff/"), "note": "Called her: forgot, took it late"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "<html" not in html
    assert "Acknowledged by nurse_a" in html and "Called her" in html
    session.expire_all()
    flag = session.get(Flag, flag.id)
    assert flag.acknowledged_by == world.staff["nurse_a"].id and flag.ack_note.startswith("Called her")
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "flag_acknowledged")).one().reason
    assert "Day 2 not logged" not in client.get("/staff/flags").get_data(as_text=True)
    assert "Called her" in client.get("/staff/flags?show=all").get_data(as_text=True)


def test_acknowledging_needs_a_note(client, auth, world, session, clock):
    flag = _flag(session, world, clock)
    auth.staff("nurse_a")
    r = client.post(f"/staff/flags/{flag.id}/acknowledge", headers={"HX-Request": "true"},
                    data={"csrf_token": auth.csrf("/staff/"), "note": " "})
    assert r.status_code == 400 and "Write what was done." in r.get_data(as_text=True)
    session.expire_all()
    assert session.get(Flag, flag.id).acknowledged_at is None


def test_acknowledging_works_as_a_plain_form_too(client, auth, world, session, clock):
    flag = _flag(session, world, clock)
    auth.staff("nurse_a")
    r = client.post(f"/staff/flags/{flag.id}/acknowledge",
                    data={"csrf_token": auth.csrf("/staff/"), "note": "seen", "next": "https://evil.example/"})
    assert r.status_code == 302 and r.headers["Location"] == "/staff/flags"


# --- a fixed number of queries ---------------------------------------------------------------


def _populate(session, cfg, world, clock, n: int, start: int) -> None:
    """n participants at site A with 2 courses each, logs, a lab and a decision per course."""
    from diary.models import Course, DoseDecision, DoseLog, LabResult, Participant

    staff = world.staff["nurse_a"].id
    for i in range(start, start + n):
        p = Participant(study_number=f"Q{i:05d}", site_id=world.sites["A"].id, cohort="primary",
                        phone_enc=b"x", phone_hash=f"h{i}", enrolled_by=staff)
        session.add(p)
        session.flush()
        for cycle in (1, 2):
            day1 = (clock.now - timedelta(days=30 - 15 * cycle)).date()
            c = Course(participant_id=p.id, cycle_number=cycle, adc_drug="other", infusion_date=day1 - timedelta(1),
                       start_date=day1, starting_dose_mg=5, created_by=staff)
            session.add(c)
            session.flush()
            session.add_all([DoseLog(course_id=c.id, course_day=d, outcome="taken", source="participant",
                                     client_key=f"{c.id}-{d}", received_at=clock.now) for d in (1, 2, 3)])
            session.add(LabResult(course_id=c.id, course_day=7, drawn_on=day1, plt=60, entered_by=staff))
            session.add(DoseDecision(course_id=c.id, effective_day=8, dose_mg=7.5, action="increase",
                                     decided_by=staff))
    session.commit()


def _count_queries(app, session, cfg, clock) -> int:
    statements = []
    engine = app.extensions["diary.engine"]

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        grid = adherence.build_grid(session, cfg, clock.now, frozenset({1}))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert grid.rows
    return len(statements)


def test_the_grid_is_built_with_a_fixed_number_of_queries(app, session, world, clock):
    cfg = app.extensions["diary.study"]
    _populate(session, cfg, world, clock, 5, 0)
    small = _count_queries(app, session, cfg, clock)
    _populate(session, cfg, world, clock, 60, 5)
    large = _count_queries(app, session, cfg, clock)
    assert small == large
    assert large <= 7


@pytest.mark.parametrize("page", ["/staff/adherence", "/staff/adherence?state=all&cohort=primary"])
def test_the_grid_page_renders_for_an_admin(client, auth, world, page):
    auth.staff("admin")
    html = client.get(page).get_data(as_text=True)
    assert "PA" in html and "PB" in html


def test_the_headline_counts_only_what_the_filters_show(app, session, world, clock):
    """Issue 9, problem 6: a finished course hidden by the "running" filter was counted."""
    cfg = app.extensions["diary.study"]
    pa = world.participants["pa"]
    from diary.models import Course

    day1 = world.courses["pa"].start_date - timedelta(days=30)
    earlier = Course(participant_id=pa.id, cycle_number=9, adc_drug="other", infusion_date=day1 - timedelta(days=1),
                     start_date=day1, starting_dose_mg=5, created_by=world.staff["nurse_a"].id)
    session.add(earlier)
    session.flush()
    for day in range(1, 15):  # the finished course: every day taken
        dosing.log_dose(session, cfg, participant=pa, course_id=earlier.id, day=day, outcome="taken",
                        client_key=f"e{day}", source="staff", now=clock.now, staff_id=world.staff["admin"].id,
                        correction_reason="paper", taken_at=clock.now - timedelta(days=33 - day))
    session.commit()
    running = adherence.build_grid(session, cfg, clock.now, None, adherence.Filters(course_state="running"))
    assert {row.course_id for row in running.rows} == {world.courses["pa"].id, world.courses["pb"].id}
    # Day 1 of both running courses is missed; days 2 (before its cutoff) and 3 are due, not counted.
    assert (running.overall.taken, running.overall.counted) == (0, 2)
    everything = adherence.build_grid(session, cfg, clock.now, None, adherence.Filters())
    assert (everything.overall.taken, everything.overall.counted) == (14, 16)
    flagged = adherence.build_grid(session, cfg, clock.now, None, adherence.Filters(flagged_only=True))
    assert flagged.rows == [] and flagged.overall.counted == 0


def test_the_flag_queue_shows_new_danger_flags_after_500_old_ones(client, auth, world, session, clock):
    """Issue 9, problem 7: the queue fetched the oldest 500 flags, then sorted."""
    pa = world.participants["pa"]
    for n in range(510):
        flag = raise_flag(session, key=f"old:{n}", kind="missed_dose", site_id=pa.site_id, participant_id=pa.id,
                          detail=f"old {n}", now=clock.now - timedelta(days=30))
        flag.acknowledged_at, flag.acknowledged_by, flag.ack_note = clock.now, world.staff["nurse_a"].id, "ok"
    raise_flag(session, key="danger:new", kind="danger_symptom", site_id=pa.site_id, participant_id=pa.id,
               detail="Danger symptom: vomiting blood", now=clock.now)
    session.commit()
    auth.staff("nurse_a")
    html = client.get("/staff/flags?show=all").get_data(as_text=True)
    assert "Danger symptom: vomiting blood" in html
    assert html.index("Danger symptom: vomiting blood") < html.index("old 509")


def test_the_course_state_filters_keep_exactly_the_courses_in_that_state_in_every_time_zone(
        app, session, world, clock):
    """The state filters narrow the query in SQL (issue 15: the default "running" view loads one
    course per participant); at the edges of a course, in zones a day apart, they still keep
    exactly the courses course_state puts in that state."""
    cfg = app.extensions["diary.study"]
    world.participants["pa"].timezone = "Pacific/Kiritimati"  # UTC+14
    world.participants["pb"].timezone = "Pacific/Pago_Pago"  # UTC−11
    session.commit()
    course = world.courses["pa"]
    first = adherence.build_grid(session, cfg, clock.now, None).rows[0].record.day1
    start = clock.now.replace(hour=0, minute=30) + (course.start_date - clock.now.date()) - timedelta(days=2)
    seen = set()
    for hours in range(0, 24 * (cfg.course_length_days + 4), 5):
        now = start + timedelta(hours=hours)
        every = adherence.build_grid(session, cfg, now, None).rows
        assert every and first
        for state in adherence.COURSE_STATES:
            expected = {row.course_id for row in every if row.state == state}
            got = adherence.build_grid(session, cfg, now, None, adherence.Filters(course_state=state)).rows
            assert {row.course_id for row in got} == expected, (now, state)
            # A page applies the state in SQL alone, by each zone's local date: exactly the same courses.
            page = adherence.grid_page(session, cfg, now, None, adherence.Filters(course_state=state))
            assert {row.course_id for row in page.rows} == expected and not page.has_next, (now, state)
            seen.update((row.course_id, state) for row in got)
    assert {state for _id, state in seen} == set(adherence.COURSE_STATES)


# --- paging (issue 15, item 3): one page of rows, loaded alone -------------------------------------


def _rows_shown(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="[^"]+">([^<]+)</a>', html)


def test_a_row_on_page_2_is_reachable_and_the_page_links_keep_the_filters(client, auth, app, session, world, clock):
    cfg = app.extensions["diary.study"]
    _populate(session, cfg, world, clock, 120, 0)  # one running course each, at site A
    auth.staff("admin")
    site_a = world.sites["A"].id
    first = client.get(f"/staff/adherence?site={site_a}").get_data(as_text=True)
    shown = _rows_shown(first)
    # PA and Q00000…Q00098 (PB is at site B): 100 of the 121 running courses at site A.
    assert len(shown) == 100 and shown[:2] == ["PA", "Q00000"] and "PB" not in shown
    assert "Page 1" in first and 'rel="prev"' not in first
    following = re.search(r'<a href="([^"]+)" rel="next"', first)
    assert following, "no Next link"
    href = html_unescape(following.group(1))
    assert f"site={site_a}" in href and "state=running" in href and "page=2" in href
    second = client.get(href).get_data(as_text=True)
    assert _rows_shown(second) == [f"Q{i:05d}" for i in range(99, 120)]
    assert "Page 2" in second and 'rel="next"' not in second  # the last page
    assert f'<a href="/staff/adherence?page=1&amp;state=running&amp;site={site_a}" rel="prev"' in second
    # With htmx, a page link swaps only the rows; the figures above them stay.
    fragment = client.get(href, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and "Q00119" in fragment


def test_the_headline_counts_every_course_the_filters_keep_not_only_the_page(client, auth, app, session, world,
                                                                           clock):
    cfg = app.extensions["diary.study"]
    _populate(session, cfg, world, clock, 120, 0)
    auth.staff("admin")
    site_a = world.sites["A"].id
    page = client.get(f"/staff/adherence?site={site_a}&page=2").get_data(as_text=True)
    summary = _summary_url(page)
    assert f"site={site_a}" in summary and "state=running" in summary and "page" not in summary
    figures = client.get(summary, headers={"HX-Request": "true"}).get_data(as_text=True)
    every = adherence.build_grid(session, cfg, clock.now, None,
                                 adherence.Filters(course_state="running", site_id=site_a))
    on_page = adherence.grid_page(session, cfg, clock.now, None,
                                  adherence.Filters(course_state="running", site_id=site_a), page=2)
    assert len(every.rows) == 121 and len(on_page.rows) == 21
    assert "Counts the 121 courses these filters keep" in figures
    # Days 1–3 of each Q course are logged taken, PA missed day 1: every course counts, not only a page's 21.
    assert (every.overall.taken, every.overall.counted) == (360, 361)
    assert sum(row.rate.counted for row in on_page.rows) == 63
    assert "99.7 % (360/361)" in figures
    assert "PB" not in figures  # site B is filtered out of every figure


def test_pages_go_by_study_number_and_flagged_only_keeps_participants_with_an_open_flag(app, session, world,
                                                                                       clock):
    cfg = app.extensions["diary.study"]
    _populate(session, cfg, world, clock, 120, 0)
    from diary.models import Participant

    late = session.exec(select(Participant).where(Participant.study_number == "Q00117")).one()
    raise_flag(session, key="late", kind="missed_dose", site_id=late.site_id, participant_id=late.id, detail="d",
               now=clock.now)
    session.commit()
    third = adherence.grid_page(session, cfg, clock.now, None, adherence.Filters(course_state="running"),
                                page=3, page_size=50)
    assert [row.study_number for row in third.rows] == [f"Q{i:05d}" for i in range(98, 120)]
    assert not third.has_next and third.rows[19].open_flags == 1 and third.rows[19].problem
    flagged = adherence.grid_page(session, cfg, clock.now, None, adherence.Filters(flagged_only=True))
    assert [(row.study_number, row.cycle_number) for row in flagged.rows] == [("Q00117", 1), ("Q00117", 2)]


def test_a_page_is_built_with_a_fixed_number_of_queries(app, session, world, clock):
    cfg = app.extensions["diary.study"]
    engine = app.extensions["diary.engine"]

    def count() -> int:
        statements = []
        listener = lambda *args: statements.append(1)  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            page = adherence.grid_page(session, cfg, clock.now, None, adherence.Filters(course_state="running"),
                                       page_size=10)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        assert len(page.rows) == 10
        return len(statements)

    _populate(session, cfg, world, clock, 10, 0)
    small = count()
    _populate(session, cfg, world, clock, 60, 10)
    assert count() == small <= 10
