"""diary/course_record.py: which signed dose changes the participant is still to be told of, and
which dose reminders say the dose changed (issue 10, finding 8). Pure functions of a record."""

from datetime import UTC, date, datetime

from diary import course_record
from diary.course_record import CourseRecord, DecisionFact
from diary.study import StudyConfig

CFG = StudyConfig()
DAY3 = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai on course day 3
SEEN = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def record(*signed: DecisionFact, **kw) -> CourseRecord:
    return CourseRecord(course_id=7, participant_id=1, site_id=1, cycle=1, day1=date(2026, 12, 1),
                        starting_dose_mg=5.0, tz="Asia/Shanghai",
                        decisions=tuple((d.day, d.dose_mg) for d in signed), signed=signed, **kw)


def announced(rec: CourseRecord, now: datetime = DAY3) -> list[int]:
    return [d.id for d in course_record.changes_to_announce(rec, CFG, now)]


def test_an_unacknowledged_change_is_announced_and_an_acknowledged_one_is_not():
    assert announced(record(DecisionFact(1, 4, 7.5, "increase"))) == [1]
    assert announced(record(DecisionFact(1, 4, 7.5, "increase", SEEN))) == []


def test_a_continue_decision_changes_nothing_to_announce():
    assert announced(record(DecisionFact(1, 4, 5.0, "continue"))) == []


def test_a_change_replaced_before_it_took_effect_is_not_announced():
    rec = record(DecisionFact(1, 6, 7.5, "increase"), DecisionFact(2, 5, 0, "hold"))
    assert announced(rec) == [2]


def test_a_later_change_from_a_later_day_leaves_the_first_one_standing():
    rec = record(DecisionFact(1, 4, 7.5, "increase"), DecisionFact(2, 8, 0, "hold"))
    assert announced(rec) == [1, 2]


def test_nothing_is_announced_once_the_course_or_the_participation_is_over():
    change = DecisionFact(1, 4, 7.5, "increase")
    assert announced(record(change), datetime(2026, 12, 15, 2, 0, tzinfo=UTC)) == []  # day 15
    assert announced(record(change, last_day=3), datetime(2026, 12, 4, 2, 0, tzinfo=UTC)) == []  # ended early
    assert announced(record(change, participant_status="withdrawn")) == []


def test_the_reminder_says_the_dose_changed_until_acknowledged_and_on_the_first_day():
    fresh = record(DecisionFact(1, 4, 7.5, "increase"))
    seen = record(DecisionFact(1, 4, 7.5, "increase", SEEN))
    assert [course_record.reminder_states_change(fresh, day) for day in (3, 4, 5)] == [False, True, True]
    assert [course_record.reminder_states_change(seen, day) for day in (3, 4, 5)] == [False, True, False]


def test_a_hold_has_no_reminder_to_change_and_a_resume_after_it_does():
    rec = record(DecisionFact(1, 4, 0, "hold"), DecisionFact(2, 7, 5.0, "resume"))
    assert course_record.reminder_states_change(rec, 5) is False
    assert course_record.reminder_states_change(rec, 7) is True
