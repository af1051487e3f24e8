"""Issue 9, problem 1, in a real phone browser: a danger report pauses dosing everywhere at once,
the next morning's tick sends no reminder, a nurse ends the pause in one step, and the today page
and the reminder come back."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
from playwright.sync_api import expect
from sqlmodel import Session, select

from diary.models import Message, ReviewPause
from diary.scheduling import run_jobs
from diary.scheduling.context import Jobs
from tests.conftest import PASSWORD, PIN
from tests.e2e.conftest import axe_violations, screenshot
from tests.e2e.test_patient_diary import at_local_nine

WAIT = "Do not take your study tablets (hetrombopag) until the study team has called you."


def participant_sign_in(page, live_server, world) -> None:
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Mobile phone number").fill(world.phones["pa"])
    page.get_by_label("PIN").fill(PIN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Day \d+ of 14"))


def staff_sign_in(page, live_server, world, clock, who: str) -> None:
    page.goto(f"{live_server.url}/staff/")
    page.get_by_label("E-mail").fill(f"{who}@test.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("6-digit code from your authenticator app").fill(pyotp.TOTP(world.totp[who]).at(clock.now))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Participants")


def tick(app, clock) -> None:
    with app.app_context():
        run_jobs(app.extensions["diary.engine"], Jobs.from_app(app), clock.now)


def reminder_keys(app) -> set[str]:
    with Session(app.extensions["diary.engine"]) as s:
        return set(s.exec(select(Message.dedupe_key).where(Message.kind.in_(["dose", "followup"]))).all())


def test_a_danger_report_pauses_dosing_until_a_nurse_ends_the_pause(
        page, browser, browser_context_args, live_server, world, app, clock, console_errors):
    at_local_nine(clock)
    course_id = world.courses["pa"].id
    participant_sign_in(page, live_server, world)
    expect(page.get_by_role("button", name="I took it", exact=True)).to_be_visible()

    page.get_by_role("link", name="Symptoms").click()
    page.get_by_label("Black or bloody stools").check()
    page.locator("label[for='sev-black_or_bloody_stool-severe']").click()
    page.get_by_role("button", name="Send to my study team").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Call your study team now")

    page.goto(f"{live_server.url}/")
    expect(page.get_by_text(WAIT)).to_be_visible()
    expect(page.get_by_role("button", name="I took it", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("Study team"))).to_have_attribute("href", "tel:+8659100000000")
    assert axe_violations(page) == []
    screenshot(page, "today-review-pause")

    # 08:05 the next morning: no dose reminder while the pause is open.
    clock.now = clock.now + timedelta(hours=23, minutes=5)
    tick(app, clock)
    assert f"dose:{course_id}:4" not in reminder_keys(app)

    # A nurse ends the pause from the flag queue, in one step.
    staff = browser.new_context(**browser_context_args).new_page()
    staff_sign_in(staff, live_server, world, clock, "nurse_a")
    staff.goto(f"{live_server.url}/staff/flags")
    staff.get_by_label("Note: what was decided with the participant").fill("Called: stools dark from iron tablets")
    staff.get_by_role("button", name="Continue dosing (end the review pause)").click()
    expect(staff.get_by_text("Review pause ended")).to_be_visible()
    with Session(app.extensions["diary.engine"]) as s:
        assert s.exec(select(ReviewPause.close_kind)).all() == ["continue"]

    # The today page and the reminder are back.
    page.goto(f"{live_server.url}/")
    if "/login" in page.url:  # the session may have lapsed overnight
        participant_sign_in(page, live_server, world)
    expect(page.get_by_text(WAIT)).to_have_count(0)
    expect(page.get_by_role("button", name="I took it", exact=True)).to_be_visible()
    tick(app, clock)
    assert f"dose:{course_id}:4" in reminder_keys(app)
    assert console_errors == []
