"""The audited records in a real browser: a nurse's tablet count that does not add up, and an
investigator's serious adverse event from the danger report to 'reported'."""

from datetime import timedelta

from playwright.sync_api import expect

from diary.services import symptoms
from tests.conftest import PIN
from tests.e2e.conftest import axe_violations
from tests.e2e.test_staff_morning import staff_sign_in


def participant_signs_in(page, live_server, world):
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Mobile phone number").fill(world.phones["pa"])
    page.get_by_label("PIN").fill(PIN)
    page.get_by_role("button", name="Sign in").click()


def test_dispense_log_doses_return_and_the_discrepancy_is_flagged(
        page, browser, browser_context_args, live_server, world, clock, console_errors):
    today = (clock.now + timedelta(hours=8)).date()
    staff_sign_in(page, live_server, world, clock, "nurse_a")
    page.goto(f"{live_server.url}/staff/participants/{world.participants['pa'].id}")
    page.get_by_role("link", name="Dispense").click()
    page.get_by_label("Date dispensed").fill(today.isoformat())
    page.get_by_label("Tablets dispensed").fill("28")
    page.get_by_label("Lot number").fill("HT2611A")
    page.get_by_label("Expiry date").fill((today + timedelta(days=365)).isoformat())
    assert axe_violations(page) == []
    page.get_by_role("button", name="Save the dispensing").click()
    expect(page.get_by_text("28 tablets dispensed for cycle 1.")).to_be_visible()

    # The participant checks off today's dose on her own phone (5 mg = 2 tablets).
    phone = browser.new_context(**browser_context_args).new_page()
    participant_signs_in(phone, live_server, world)
    phone.get_by_role("button", name="I took it", exact=True).click()
    expect(phone.get_by_role("button", name="Undo")).to_be_visible()
    phone.context.close()

    # She brings back 20 tablets: 28 − 20 − 2 = 6 unaccounted, beyond the tolerance of 2.
    page.goto(f"{live_server.url}/staff/participants/{world.participants['pa'].id}/accountability")
    page.get_by_role("link", name="Return").click()
    page.get_by_label("Date returned").fill(today.isoformat())
    page.get_by_label("Tablets returned").fill("20")
    page.get_by_role("button", name="Save the return").click()
    expect(page.get_by_text("+6 tablets are unaccounted for: a flag was raised.")).to_be_visible()
    expect(page.get_by_text("beyond the tolerance of 2")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_role("navigation", name="Staff workspace").get_by_role("link", name="Flags").click()
    expect(page.get_by_text("+6 tablets unaccounted (dispensed 28, returned 20, logged taken 2; tolerance 2)",
                            exact=False)).to_be_visible()
    assert console_errors == []


def test_a_danger_report_becomes_an_sae_that_the_investigator_marks_reported(
        page, live_server, world, session, clock, console_errors):
    symptoms.report_symptoms(
        session, page_cfg(live_server), participant=world.participants["pa"],
        symptoms=[{"key": "black_or_bloody_stool", "severity": "severe"}], noticed_at=clock.now,
        client_key="e2e-danger", source="participant", now=clock.now, course_id=world.courses["pa"].id)
    session.commit()
    staff_sign_in(page, live_server, world, clock, "investigator_a")
    page.get_by_role("navigation", name="Staff workspace").get_by_role("link", name="Flags").click()
    page.get_by_role("button", name="Draft an adverse event").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Complete the AE draft")
    expect(page.get_by_label("Term (CTCAE v5.0)")).to_have_value("lower_gi_hemorrhage")
    page.get_by_label("Grade (CTCAE v5.0)").select_option("3")
    page.get_by_label("Serious adverse event (SAE)").check()
    page.get_by_label("Requires or prolongs hospitalisation").check()
    page.get_by_label("Relatedness to hetrombopag").select_option("possible")
    page.get_by_label("Action taken with the study drug").select_option("drug_interrupted")
    page.get_by_label("Outcome").select_option("recovering")
    assert axe_violations(page) == []
    page.get_by_role("button", name="Save the adverse event").click()
    expect(page.get_by_text("SAE: the on-call phone is alerted and the reporting clock has started.")).to_be_visible()

    page.get_by_role("link", name="Participants").first.click()
    expect(page.get_by_role("heading", name="Serious adverse events to report")).to_be_visible()
    expect(page.get_by_text("SAE report due by")).to_be_visible()
    assert axe_violations(page) == []
    page.locator("#sae-clocks").get_by_role("link", name="PA").click()
    local = clock.now + timedelta(hours=8)
    page.get_by_label("Date reported to the sponsor").fill(local.date().isoformat())
    page.get_by_label("Time (HH:MM, local)").fill(local.strftime("%H:%M"))
    page.get_by_role("button", name="Mark the SAE as reported to the sponsor").click()
    expect(page.get_by_text("SAE marked as reported; the reporting clock has stopped.")).to_be_visible()
    page.get_by_role("link", name="Participants").first.click()
    expect(page.get_by_text("Serious adverse events to report")).to_have_count(0)
    assert console_errors == []


def page_cfg(live_server):
    return live_server.app.extensions["diary.study"]
