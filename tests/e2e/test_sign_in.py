"""Signing in as people do it: a participant activates on a phone; a nurse uses her second step."""

import re

import pyotp
from playwright.sync_api import expect
from sqlmodel import select

from diary.auth.services import Policy, issue_activation
from diary.models import Participant
from tests.conftest import PASSWORD
from tests.e2e.conftest import axe_violations, screenshot


def test_a_participant_activates_her_phone_and_later_signs_in_with_phone_and_pin(
    page, live_server, world, session, clock, console_errors
):
    participant = session.exec(select(Participant).where(Participant.study_number == "PA")).one()
    token = issue_activation(session, participant, world.staff["nurse_a"].id, clock.now, Policy())
    session.commit()

    page.goto(f"{live_server.url}/activate/{token}")
    assert axe_violations(page) == []
    page.get_by_label("Choose a PIN (4 to 6 digits)").fill("2580")
    page.get_by_label("Type the same PIN again").fill("2580")
    page.get_by_role("button", name="Save my PIN").click()
    expect(page.get_by_text("Your PIN is set.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Day 3 of 14"))

    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Mobile phone number").fill("138 0000 1111")
    page.get_by_label("PIN").fill("2580")
    assert axe_violations(page) == []
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Day 3 of 14"))
    screenshot(page, "sign-in-today-en")
    assert console_errors == []


def test_the_sign_in_page_switches_to_chinese(page, live_server, world):
    page.goto(f"{live_server.url}/login")
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("登录")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert axe_violations(page) == []


def test_a_nurse_signs_in_with_password_and_authenticator_code(page, live_server, world, clock, console_errors):
    page.goto(f"{live_server.url}/staff/")
    page.get_by_label("E-mail").fill("nurse_a@test.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("6-digit code from your authenticator app").fill(pyotp.TOTP(world.totp["nurse_a"]).at(clock.now))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Participants")
    expect(page.get_by_role("link", name="PA", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="PB", exact=True)).to_have_count(0)
    assert console_errors == []
