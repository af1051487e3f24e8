"""diary/reminders.py: what is due at an instant, as pure functions (no app, no database)."""

from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace

from diary import course_record, reminders
from diary.course_record import CourseRecord, LabFact, LogFact
from diary.study import StudyConfig

CFG = StudyConfig()
SHANGHAI = "Asia/Shanghai"


def state(*, doses=(5.0,) * 14, logged=frozenset(), drawn=frozenset(), **kw) -> CourseRecord:
    """A course record from the facts a test cares about: mg per day, logged days, drawn days."""
    values = dict(course_id=7, participant_id=1, site_id=1, cycle=1, day1=date(2026, 12, 1), starting_dose_mg=5.0,
                  tz=SHANGHAI, reminder_time=time(8, 0))
    decisions = tuple((day, mg) for day, mg in enumerate(doses, start=1))
    logs = {day: LogFact(id=day, day=day, outcome="taken") for day in logged}
    labs = tuple(LabFact(id=day, day=day, plt=80) for day in drawn)
    return CourseRecord(**(values | kw), decisions=decisions, logs=logs, labs=labs)


def due_kinds(now: datetime, **kw) -> list[str]:
    return [d.dedupe_key for d in reminders.due_reminders(state(**kw), CFG, now)]


def test_nothing_is_due_before_the_reminder_time():
    assert due_kinds(datetime(2026, 12, 2, 23, 59, tzinfo=UTC)) == []  # 07:59 on day 3


def test_the_dose_reminder_is_due_from_the_local_reminder_time_until_the_day_ends():
    assert due_kinds(datetime(2026, 12, 3, 0, 0, tzinfo=UTC)) == ["dose:7:3"]
    assert due_kinds(datetime(2026, 12, 3, 0, 0, tzinfo=UTC), logged=frozenset({3})) == []


def test_a_held_day_has_no_dose_reminder():
    assert due_kinds(datetime(2026, 12, 3, 0, 0, tzinfo=UTC), doses=(5.0, 5.0, 0.0) + (5.0,) * 11) == []


def test_a_reminder_in_quiet_hours_is_held_until_they_end():
    [due] = reminders.due_reminders(state(reminder_time=time(6, 0)), CFG, datetime(2026, 12, 2, 22, 0, tzinfo=UTC))
    assert due.not_before == datetime(2026, 12, 2, 23, 0, tzinfo=UTC)  # 07:00 local


def test_a_reminder_at_a_site_with_its_own_quiet_hours_is_held_by_those():
    site_window = {"quiet_start": time(5, 0), "quiet_end": time(6, 30)}
    [due] = reminders.due_reminders(state(reminder_time=time(6, 0), **site_window), CFG,
                                    datetime(2026, 12, 2, 22, 0, tzinfo=UTC))
    assert due.not_before == datetime(2026, 12, 2, 22, 30, tzinfo=UTC)  # 06:30 local, the site's end


def test_a_reminder_that_quiet_hours_would_push_past_its_day_is_not_planned():
    assert due_kinds(datetime(2026, 12, 3, 14, 0, tzinfo=UTC), reminder_time=time(22, 0)) == []


def test_the_blood_test_evening_reminder_is_due_the_day_before_a_draw_day():
    assert "draw_eve:7:7" in due_kinds(datetime(2026, 12, 6, 11, 0, tzinfo=UTC), logged=frozenset({6}))


def test_a_drawn_blood_count_cancels_the_morning_reminder():
    now = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)  # 07:00 on day 7
    assert "draw_morn:7:7" in due_kinds(now)
    assert "draw_morn:7:7" not in due_kinds(now, drawn=frozenset({7}))


def test_a_missed_dose_is_one_whose_cutoff_passed_with_nothing_logged():
    now = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)  # noon on day 3: day 2's cutoff
    assert course_record.missed_days(state(logged=frozenset({1})), CFG, now) == [2]


def test_a_retracted_log_leaves_the_day_unlogged():
    rows = [SimpleNamespace(id=i, day=d, outcome=o, supersedes_id=s)
            for i, d, o, s in [(1, 3, "taken", None), (2, 3, "retracted", 1), (3, 4, "taken", None)]]
    current = course_record.current(rows)
    assert frozenset(r.day for r in current if r.outcome != "retracted") == frozenset({4})


def test_reminder_times_follow_the_local_clock_across_daylight_saving():
    s = state(day1=date(2026, 10, 30), tz="America/New_York", reminder_time=time(9, 30))
    before, _ = reminders.reminder_times("dose", 1, s, CFG)
    after, _ = reminders.reminder_times("dose", 4, s, CFG)
    assert (before.hour, after.hour) == (13, 14)


# course_record.day_for_log: which day a log that names no day belongs to, for every channel
# (issue 9, deliverable 5). Day 1 is 1 December in Shanghai; the cutoff is noon the next day.

def _local(day: int, hh: int, mm: int = 0) -> datetime:
    from diary import study

    return study.local_instant(date(2026, 12, day), time(hh, mm), SHANGHAI)


def test_a_log_in_the_small_hours_belongs_to_the_day_the_reminder_asked_about():
    at_half_past_midnight = _local(3, 0, 30)  # day 3 began; day 2 still open until noon
    assert course_record.day_for_log(state(), CFG, at_half_past_midnight, asked_day=2) == 2


def test_with_both_days_open_and_nothing_asked_the_answer_is_to_ask():
    ask = course_record.day_for_log(state(), CFG, _local(3, 0, 30))
    assert ask == course_record.Ask(earlier=2, later=3)


def test_a_day_already_logged_or_past_its_cutoff_is_not_offered():
    assert course_record.day_for_log(state(logged=frozenset({2})), CFG, _local(3, 0, 30)) == 3
    # After noon day 2's cutoff has passed: a reminder that asked about it no longer decides.
    assert course_record.day_for_log(state(), CFG, _local(3, 12, 30), asked_day=2) == 3


def test_a_named_day_is_taken_only_while_it_is_open():
    assert course_record.day_for_log(state(), CFG, _local(3, 9), named_day=2) == 2
    assert course_record.day_for_log(state(), CFG, _local(3, 13), named_day=2) is None
    assert course_record.day_for_log(state(), CFG, _local(3, 9), named_day=5) is None  # not begun


def test_a_held_day_is_open_for_a_dose_taken_anyway_but_a_course_not_begun_is_not():
    held_today = (5.0, 5.0, 0.0) + (5.0,) * 11
    assert course_record.day_for_log(state(doses=held_today), CFG, _local(3, 13)) == 3
    before_day_1 = _local(1, 9) - timedelta(days=2)
    assert course_record.day_for_log(state(), CFG, before_day_1) is None
