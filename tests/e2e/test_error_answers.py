"""Error answers to htmx requests in a real browser (issue 14, items 4 and 6): they are swapped in
where people see them, a page open too long keeps what was typed, and the offline shell keeps
working with content-hashed static files."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlmodel import Session, select

from diary.models import DoseLog, Flag
from diary.services.flags import acknowledge, raise_flag
from tests.e2e.conftest import axe_violations
from tests.e2e.test_patient_diary import controlled_by_the_worker, settled, sign_in, wait_for
from tests.e2e.test_staff_morning import staff_sign_in

STALE = "IjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAi.stale.token"


def _spoil_the_csrf_token(page) -> None:
    """What a page left open across a new session looks like: its token no longer matches."""
    page.evaluate(f"""() => {{
        document.body.setAttribute('hx-headers', JSON.stringify({{'X-CSRFToken': '{STALE}'}}));
        document.querySelectorAll('input[name=csrf_token]').forEach(i => i.value = '{STALE}');
    }}""")


def test_a_flag_someone_else_just_acknowledged_says_so_instead_of_nothing(page, live_server, world, session,
                                                                           clock, app, console_errors):
    pa = world.participants["pa"]
    flag = raise_flag(session, key="missed:pa:2", kind="missed_dose", site_id=pa.site_id, participant_id=pa.id,
                      detail="Day 2 dose not logged by the cutoff", now=clock.now)
    session.commit()
    staff_sign_in(page, live_server, world, clock, "nurse_a")
    page.goto(f"{live_server.url}/staff/flags")
    expect(page.get_by_text("Day 2 dose not logged by the cutoff")).to_be_visible()

    # Meanwhile the investigator acknowledges it from another computer.
    with Session(app.extensions["diary.engine"]) as other:
        acknowledge(other, flag=other.get(Flag, flag.id), staff_id=world.staff["investigator_a"].id,
                    note="Phoned, dose taken late", now=clock.now)
        other.commit()

    page.get_by_label("Note (what was done)").fill("Called her")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text("Already acknowledged.")).to_be_visible()
    assert axe_violations(page) == []


def test_a_staff_page_open_too_long_shows_why_nothing_happened(page, live_server, world, session, clock,
                                                               console_errors):
    pa = world.participants["pa"]
    raise_flag(session, key="missed:pa:2", kind="missed_dose", site_id=pa.site_id, participant_id=pa.id,
               detail="Day 2 dose not logged by the cutoff", now=clock.now)
    session.commit()
    staff_sign_in(page, live_server, world, clock, "nurse_a")
    page.goto(f"{live_server.url}/staff/flags")
    _spoil_the_csrf_token(page)
    page.get_by_label("Note (what was done)").fill("Called her")
    page.get_by_role("button", name="Acknowledge").click()
    message = page.locator("#request-error")
    expect(message).to_contain_text("This page had expired")
    expect(message.get_by_role("link", name="Reload the page")).to_be_visible()
    expect(page.get_by_label("Note (what was done)")).to_have_value("Called her")
    assert axe_violations(page) == []


def test_a_participants_check_off_after_a_stale_token_works_on_the_next_tap(page, live_server, world, app,
                                                                           console_errors):
    sign_in(page, live_server, world)
    _spoil_the_csrf_token(page)
    page.get_by_label("Yes, on an empty stomach").first.check()
    page.get_by_role("button", name="I took it", exact=True).click()
    expect(page.locator("#request-error")).to_contain_text("This page had expired")
    expect(page.get_by_label("Yes, on an empty stomach").first).to_be_checked()  # still as ticked
    with Session(app.extensions["diary.engine"]) as s:
        assert s.exec(select(DoseLog)).all() == []
    # The refusal carried a fresh token; app.js put it in, so the same tap now records the dose.
    page.get_by_role("button", name="I took it", exact=True).click()
    expect(page.get_by_text(re.compile(r"You took it at \d\d:\d\d\."))).to_be_visible()
    expect(page.locator("#request-error")).to_be_empty()  # the old message does not linger
    with Session(app.extensions["diary.engine"]) as s:
        [log] = s.exec(select(DoseLog)).all()
        assert log.fasting == "yes"
    assert [e for e in console_errors if "400" not in e] == []


def test_the_offline_shell_keeps_content_hashed_files_and_styles_the_page_offline(page, context, live_server,
                                                                                   world):
    sign_in(page, live_server, world)
    controlled_by_the_worker(page)
    styled = page.evaluate("getComputedStyle(document.querySelector('main')).maxWidth")
    assert styled != "none"
    shell = page.evaluate("""async () => {
        const name = (await caches.keys()).find(k => k.startsWith('shell-'));
        return (await (await caches.open(name)).keys()).map(r => new URL(r.url).pathname + new URL(r.url).search);
    }""")
    assert any(re.fullmatch(r"/static/app\.css\?v=[0-9a-f]{12}", url) for url in shell), shell
    assert any(re.fullmatch(r"/static/offline\.html\?v=[0-9a-f]{12}", url) for url in shell), shell
    context.set_offline(True)
    try:
        page.reload()
        wait_for(lambda: settled(page, "document.querySelector('h1') !== null"))
        # The stylesheet came from the shell: the page is laid out, not bare HTML.
        assert settled(page, "getComputedStyle(document.querySelector('main')).maxWidth") == styled
        page.goto(f"{live_server.url}/calendar-never-visited")
        assert settled(page, "getComputedStyle(document.querySelector('main')).maxWidth") == styled
    finally:
        context.set_offline(False)


def test_error_pages_are_accessible_with_a_way_back_a_finger_can_tap(page, live_server, world):
    sign_in(page, live_server, world)
    page.goto(f"{live_server.url}/no-such-page")
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    assert axe_violations(page) == []
    back = page.get_by_role("link", name="To the start page")
    assert back.bounding_box()["height"] >= 44
    back.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Day 3 of 14"))
    page.goto(f"{live_server.url}/staff/no-such-page")  # signed in as a participant: the diary's style
    assert page.evaluate("document.body.className") == "patient"
    assert axe_violations(page) == []
