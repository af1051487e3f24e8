"""A nurse's morning round, in a real browser: flag → participant → PLT → investigator signs a hold →
the participant's today page says not to take a dose."""

import re

import pyotp
from playwright.sync_api import expect

from diary.services.flags import raise_flag
from tests.conftest import PASSWORD, PIN
from tests.e2e.conftest import axe_violations, screenshot


def staff_sign_in(page, live_server, world, clock, who):
    page.goto(f"{live_server.url}/staff/")
    page.get_by_label("E-mail").fill(f"{who}@test.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("6-digit code from your authenticator app").fill(pyotp.TOTP(world.totp[who]).at(clock.now))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Participants")


def test_a_nurses_morning_ends_with_a_signed_hold_on_the_participants_phone(
    page, live_server, world, session, clock, console_errors
):
    pa = world.participants["pa"]
    raise_flag(session, key="missed:pa:2", kind="missed_dose", site_id=pa.site_id, participant_id=pa.id,
               detail="Day 2 dose not logged by the cutoff", now=clock.now)
    session.commit()

    # The nurse signs in with password and authenticator code and works the flag queue.
    staff_sign_in(page, live_server, world, clock, "nurse_a")
    page.get_by_role("navigation", name="Staff workspace").get_by_role("link", name="Flags").click()
    expect(page.get_by_text("Day 2 dose not logged by the cutoff")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_role("link", name="PA", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("PA")
    assert axe_violations(page) == []

    # She enters this morning's PLT: the rule table proposes a hold, which she cannot sign.
    page.get_by_label("PLT (×10⁹/L)").fill("130")
    # Nothing may widen the page beyond the tablet's width (a zoomed-out page mis-targets taps).
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    page.get_by_role("button", name="Save the blood count").click()
    expect(page.get_by_text("PLT 130×10⁹/L saved (CTCAE grade 0).")).to_be_visible()
    expect(page.get_by_text(re.compile(r"R1: PLT ≥ 100"))).to_be_visible()
    expect(page.get_by_text("Only an investigator can sign a dose decision.")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_role("button", name="Sign out").click()

    # The investigator opens the participant, sees the waiting proposal and signs the hold.
    staff_sign_in(page, live_server, world, clock, "investigator_a")
    page.get_by_role("link", name="PA", exact=True).click()
    page.get_by_role("link", name="See the proposal").click()
    expect(page.get_by_label("Dose from the effective day")).to_have_value("0.0")
    page.get_by_label("Your password (signature)").fill(PASSWORD)
    assert axe_violations(page) == []
    page.get_by_role("button", name="Sign the decision").click()
    expect(page.get_by_text(re.compile(r"Signed: hold from day 3"))).to_be_visible()
    screenshot(page, "staff-participant-after-hold")
    page.get_by_role("button", name="Sign out").click()

    # On her phone, the participant is told not to take a dose today.
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Mobile phone number").fill(world.phones["pa"])
    page.get_by_label("PIN").fill(PIN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Do not take your study tablets (hetrombopag) today.")).to_be_visible()
    assert console_errors == []
