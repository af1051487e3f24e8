"""Issue 10, findings 1 and 4 in a real phone browser: a danger answer is never refused for a missing
severity, and stroke, chest-pain or breathing signs put the emergency number first."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlmodel import Session, select

from diary.models import Flag, SymptomReport
from tests.e2e.conftest import axe_violations
from tests.e2e.test_patient_diary import controlled_by_the_worker, sign_in, wait_for


def _reports(app):
    with Session(app.extensions["diary.engine"]) as s:
        return s.exec(select(SymptomReport)).all()


def _flag_kinds(app):
    with Session(app.extensions["diary.engine"]) as s:
        return s.exec(select(Flag.kind)).all()


def test_a_danger_answer_without_how_bad_opens_the_danger_screen_and_flags_staff(
        page, live_server, world, app, console_errors):
    sign_in(page, live_server, world)
    page.get_by_role("link", name="Symptoms").click()
    page.get_by_label("Vomiting blood, or vomit that looks like coffee grounds").check()
    page.get_by_role("button", name="Send to my study team").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Call your study team now")
    [report] = _reports(app)
    assert report.symptoms == [{"key": "vomiting_blood", "severity": "not_stated"}]
    assert _flag_kinds(app) == ["danger_symptom"]
    assert console_errors == []


def test_an_offline_danger_answer_without_how_bad_is_kept_and_sent(page, context, live_server, world, app):
    sign_in(page, live_server, world)
    page.get_by_role("link", name="Symptoms").click()
    controlled_by_the_worker(page)
    context.set_offline(True)
    page.get_by_label("Coughing up blood").check()
    page.get_by_role("button", name="Send to my study team").click()
    expect(page.get_by_role("heading", name="Call your study team now")).to_be_visible()
    context.set_offline(False)
    wait_for(lambda: _flag_kinds(app) == ["danger_symptom"])
    assert _reports(app)[0].symptoms == [{"key": "coughing_blood", "severity": "not_stated"}]


def test_stroke_signs_say_call_120_first_then_the_study_team(page, live_server, world, app, console_errors):
    sign_in(page, live_server, world)
    page.get_by_role("link", name="Symptoms").click()
    page.get_by_label(re.compile("^Sudden weakness or numbness")).check()
    page.get_by_role("button", name="Send to my study team").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Call 120 now")
    calls = page.locator(".danger-screen:visible a[href^='tel:']")
    expect(calls.first).to_have_attribute("href", "tel:120")
    expect(calls.nth(1)).to_have_attribute("href", "tel:+8659100000000")
    expect(page.get_by_text("Do not take any more of your study tablets (hetrombopag)")).to_be_visible()
    assert axe_violations(page) == []
    assert console_errors == []


def test_offline_chest_pain_shows_the_emergency_number_first(page, context, live_server, world, app):
    sign_in(page, live_server, world)
    page.get_by_role("link", name="Symptoms").click()
    controlled_by_the_worker(page)
    context.set_offline(True)
    page.get_by_label("Sudden chest pain or shortness of breath").check()
    page.get_by_role("button", name="Send to my study team").click()
    expect(page.get_by_role("heading", name="Call 120 now")).to_be_visible()
    expect(page.locator(".danger-screen:visible a[href^='tel:']").first).to_have_attribute("href", "tel:120")
    context.set_offline(False)
    wait_for(lambda: _flag_kinds(app) == ["danger_symptom"])
