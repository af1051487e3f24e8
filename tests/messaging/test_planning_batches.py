"""The planning jobs read running courses in batches (issue 15, item 4): every participant is still
planned for, and a reminder is queued once even when two schedulers decide to queue it at once."""

from datetime import date

from sqlmodel import select

from diary.models import Flag, Message
from diary.scheduling import planning


def test_participants_in_several_batches_each_get_their_reminder_and_missed_dose_flags(
        sms, enrol, session, monkeypatch):
    monkeypatch.setattr(planning, "BATCH", 2)
    enrolled = [enrol(day1=date(2026, 11, 28)) for _ in range(5)]  # day 4 at 09:00; days 1 and 2 missed

    summary = sms.tick()

    reminders = [m for m in sms.outbox() if m.kind in ("dose", "followup", "draw_eve", "draw_morn")]
    assert summary["reminders"] == len(reminders) >= 5
    for _participant, course, _phone in enrolled:
        assert session.exec(select(Message.dedupe_key).where(Message.course_id == course.id)).all() == \
            [f"dose:{course.id}:4"]
        assert sorted(session.exec(select(Flag.key).where(Flag.kind == "missed_dose",
                                                          Flag.key.like(f"missed:{course.id}:%"))).all()) == \
            [f"missed:{course.id}:1", f"missed:{course.id}:2"]


def test_a_reminder_two_schedulers_both_decide_to_queue_is_queued_once(sms, enrol, monkeypatch):
    _, course, _ = enrol(day1=date(2026, 11, 30))
    first = sms.tick()
    # The second scheduler checked the outbox before the first one's rows were committed.
    monkeypatch.setattr(planning, "existing", lambda *_args: set())

    second = sms.tick()

    assert first["reminders"] > 0 and second["reminders"] == 0
    assert [m.dedupe_key for m in sms.outbox() if m.course_id == course.id] == [f"dose:{course.id}:2"]


def test_a_reminder_written_in_bulk_keeps_its_template_parameters_and_instants(sms, enrol, app):
    from diary.messaging import texts

    _, course, _ = enrol(day1=date(2026, 11, 30))
    sms.tick()

    [row] = [m for m in sms.outbox() if m.course_id == course.id]
    assert row.template and isinstance(row.template_params, dict)
    with app.app_context():
        assert texts.render(row.template, row.language, **row.template_params) == row.body
    assert row.not_before.tzinfo is not None and row.not_before <= row.expires_at


def test_a_batch_whose_reminders_cannot_be_written_is_reported_and_the_other_batches_are_written(
        sms, enrol, monkeypatch):
    monkeypatch.setattr(planning, "BATCH", 1)
    enrolled = [enrol(day1=date(2026, 11, 30)) for _ in range(3)]
    write = planning.insert_ignoring_duplicates
    doomed = enrolled[1][1].id

    def failing(session, rows):
        if any(row["course_id"] == doomed for row in rows):
            raise RuntimeError("the database went away")
        return write(session, rows)

    monkeypatch.setattr(planning, "insert_ignoring_duplicates", failing)

    summary = sms.tick()

    assert summary["reminders"] == "error"
    ours = {course.id for _, course, _ in enrolled}
    assert {m.course_id for m in sms.outbox() if m.course_id in ours} == ours - {doomed}
