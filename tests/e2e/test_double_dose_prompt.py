"""Issue 10, finding 2, in a real phone browser: yesterday's card, shown next to today's until the
cutoff, never invites a dose; it says to record only a dose already taken and gives the missed-dose
rule; and recording yesterday's dose this morning next to today's raises the double-dose flag."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlmodel import Session, select

from diary.models import DoseLog, Flag
from tests.e2e.conftest import axe_violations, screenshot
from tests.e2e.test_patient_diary import at_local_nine, controlled_by_the_worker, sign_in, wait_for

RULE = "Record this only if you already took it. If you missed a dose, skip it and never take two doses in one day."


def _flags(app) -> list[Flag]:
    with Session(app.extensions["diary.engine"]) as s:
        return list(s.exec(select(Flag).where(Flag.kind == "doses_too_close")).all())


def _logs(app) -> list[DoseLog]:
    with Session(app.extensions["diary.engine"]) as s:
        return list(s.exec(select(DoseLog).order_by(DoseLog.id)).all())


def test_yesterdays_card_never_invites_a_dose_and_a_double_dose_is_flagged(
        page, live_server, world, app, clock, console_errors):
    at_local_nine(clock)  # course day 3, 09:00: day 2 may be recorded until noon
    course_id = world.courses["pa"].id
    sign_in(page, live_server, world)

    yesterday = page.locator(f"#day-{course_id}-2")
    expect(yesterday.get_by_text(RULE)).to_be_visible()
    expect(yesterday.locator(".status")).to_have_text("? Not recorded yet")
    expect(yesterday).not_to_contain_text("To take")
    expect(yesterday).not_to_contain_text("once")
    expect(yesterday.get_by_role("button", name="I took it", exact=True)).to_have_count(0)
    # Today's card still gives today's instruction, and its status is "to take".
    today = page.locator(f"#day-{course_id}-3")
    expect(today.get_by_text("Take 5 mg hetrombopag (2 tablets) today, once.")).to_be_visible()
    expect(today.locator(".status").first).to_contain_text("To take")
    assert axe_violations(page) == []
    screenshot(page, "today-with-yesterdays-card")

    # Yesterday's dose, actually swallowed at 08:30 this morning (the form offers today's date) …
    yesterday.locator("input[name=taken_on]").nth(1).check()
    yesterday.get_by_label("What time did you take it?").fill("08:30")
    yesterday.get_by_label("Not sure").check()
    yesterday.get_by_role("button", name="Save: I took it at this time").click()
    expect(page.locator(f"#day-{course_id}-2").get_by_text("You took it at 08:30")).to_be_visible()
    # … and today's at 09:00 by the one-tap button: half an hour apart.
    page.locator(f"#day-{course_id}-3").get_by_role("button", name="I took it", exact=True).click()
    expect(page.locator(f"#day-{course_id}-3").get_by_text("You took it at 09:00.")).to_be_visible()

    [flag] = wait_for(lambda: _flags(app))
    assert flag.key == f"doses_too_close:{course_id}:2:3" and "0.5 h apart" in flag.detail
    assert [(log.course_day, log.fasting) for log in _logs(app)] == [(2, "unsure"), (3, None)]
    assert axe_violations(page) == []
    assert console_errors == []


def test_an_offline_check_off_keeps_the_empty_stomach_answer(page, context, live_server, world, app, clock):
    """Issue 10, item 11, on the phone's queue (static/app.js): "No, I had eaten" survives offline."""
    at_local_nine(clock)
    # The phone stamps the queued dose with its own clock: it must agree with the server's moved one,
    # or after 09:05 in Shanghai the dose reads as taken in the future (and before it, on another day).
    page.clock.set_fixed_time(clock.now)
    sign_in(page, live_server, world)
    controlled_by_the_worker(page)
    context.set_offline(True)
    page.goto(f"{live_server.url}/")  # served by the service worker from its cache
    today = page.locator(f"#day-{world.courses['pa'].id}-3")
    today.get_by_label("No, I had eaten").first.check()
    today.get_by_role("button", name="I took it", exact=True).click()
    expect(today.locator(".notice")).to_have_text("Saved on this phone. It will be sent when you are online.")
    assert _logs(app) == []
    context.set_offline(False)
    [log] = wait_for(lambda: _logs(app))
    assert (log.course_day, log.outcome, log.fasting) == (3, "taken", "no")
