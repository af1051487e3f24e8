"""Issue 10, finding 8, in a real phone browser: after an investigator signs a dose change, the
participant's next page view says so, with the new dose and the day it starts; "I understand"
removes the notice for good; and the participant page shows staff that it was acknowledged."""

from __future__ import annotations

import re
from datetime import timedelta

from babel.dates import format_skeleton
from playwright.sync_api import expect

from diary.services import decisions
from tests.e2e.conftest import axe_violations, screenshot
from tests.e2e.test_danger_pause import participant_sign_in, staff_sign_in
from tests.e2e.test_patient_diary import at_local_nine


def test_a_signed_dose_change_is_shown_until_the_participant_understands_it(
        page, browser, browser_context_args, live_server, world, app, session, clock, console_errors):
    at_local_nine(clock)
    course = world.courses["pa"]
    decisions.sign_decision(session, app.extensions["diary.study"], course=course,
                            signer=world.staff["investigator_a"], effective_day=4, dose_mg=7.5,
                            current_dose_mg=5, now=clock.now)
    session.commit()
    tomorrow = format_skeleton("MMMEd", course.start_date + timedelta(days=3), locale="en")
    notice = f"Your dose has changed: now 3 tablets = 7.5 mg hetrombopag from {tomorrow}."

    participant_sign_in(page, live_server, world)
    expect(page.get_by_role("heading", name="A message from your study doctor")).to_be_visible()
    expect(page.get_by_text(notice)).to_be_visible()
    understand = page.get_by_role("button", name="I understand")
    box = understand.bounding_box()
    assert box and box["height"] >= 44 and box["width"] >= 44  # a thumb's tap target
    assert axe_violations(page) == []
    screenshot(page, "today-dose-change")

    understand.click()
    expect(page.get_by_role("status").filter(has_text="Your study team can see that you have read it")).to_be_visible()
    expect(page.get_by_text(notice)).to_have_count(0)
    assert axe_violations(page) == []
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Day \d+ of 14"))
    expect(page.get_by_text(notice)).to_have_count(0)

    staff = browser.new_context(**browser_context_args).new_page()
    staff_sign_in(staff, live_server, world, clock, "nurse_a")
    staff.goto(f"{live_server.url}/staff/participants/{world.participants['pa'].id}")
    acknowledged = re.compile(r"Acknowledged by the participant at \d{4}-\d\d-\d\d \d\d:\d\d")
    expect(staff.get_by_text(acknowledged)).to_be_visible()
    expect(staff.get_by_text("Not yet acknowledged by the participant")).to_have_count(0)
    assert console_errors == []
