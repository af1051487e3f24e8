"""Administration in the app (issue 14, item 1): admins create and edit sites and staff accounts,
change role and site scope, deactivate (ending sessions at once), reset the authenticator and require
a new password; everything audited; nobody else gets in."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlmodel import select

from diary.models import AuditEvent, Site, StaffSite, StaffUser
from tests.conftest import PASSWORD, csrf_from, mentions
from tests.web.race_helpers import new_client
from tests.web.staff_helpers import english  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("english")
HTMX = {"HX-Request": "true"}

ADMIN_GETS = ["/staff/admin/", "/staff/admin/sites/new", "/staff/admin/sites/{site}", "/staff/admin/staff/new",
              "/staff/admin/staff/{nurse}"]
ADMIN_POSTS = ["/staff/admin/sites/new", "/staff/admin/sites/{site}", "/staff/admin/staff/new",
               "/staff/admin/staff/{nurse}", "/staff/admin/staff/{nurse}/deactivate",
               "/staff/admin/staff/{nurse}/reset-totp", "/staff/admin/staff/{nurse}/require-password-change",
               "/staff/admin/staff/{nurse}/reset-password"]


def _url(template, world):
    return template.format(site=world.sites["A"].id, nurse=world.staff["nurse_a"].id)


def _events(session, action):
    session.rollback()
    session.expire_all()
    return session.exec(select(AuditEvent).where(AuditEvent.action == action)).all()


def _staff(session, world, key):
    session.rollback()
    session.expire_all()
    return session.get(StaffUser, world.staff[key].id)


def _sign_in(client, email, password, totp_secret, clock):
    """Password, then the authenticator code: where the sign-in goes next (Location)."""
    token = csrf_from(client, "/staff/login")
    r = client.post("/staff/login", data={"csrf_token": token, "email": email, "password": password})
    if r.status_code != 302 or totp_secret is None:
        return r
    token = csrf_from(client, "/staff/login/code")
    return client.post("/staff/login/code", data={"csrf_token": token,
                                                  "code": pyotp.TOTP(totp_secret).at(clock.now)})


def _signed_in(app, world, clock, key):
    c = new_client(app)
    r = _sign_in(c, f"{key}@test.example", PASSWORD, world.totp[key], clock)
    assert r.status_code == 302 and r.headers["Location"].startswith("/staff"), r.get_data(as_text=True)
    return c


@pytest.mark.any_db
@pytest.mark.parametrize("who", ["nurse_a", "investigator_a"])
@pytest.mark.parametrize("page", ADMIN_GETS)
def test_only_admins_open_the_administration_pages(client, auth, world, who, page):
    auth.staff(who)
    assert client.get(_url(page, world)).status_code == 403


@pytest.mark.any_db
@pytest.mark.parametrize("page", ADMIN_POSTS)
def test_an_investigator_changes_nothing_in_administration(client, auth, world, session, page):
    auth.staff("investigator_a")
    token = csrf_from(client, "/staff/")
    r = client.post(_url(page, world), data={"csrf_token": token, "reason": "x", "name": "X", "code": "Z",
                                             "timezone": "UTC", "phone": "+86 591 1", "emergency_phone": "120",
                                             "role": "admin", "email": "x@test.example"})
    assert r.status_code == 403
    assert _staff(session, world, "nurse_a").is_active and _events(session, "site_created") == []


@pytest.mark.any_db
def test_the_administration_link_shows_for_admins_only(client, auth):
    auth.staff("admin")
    assert "Administration" in client.get("/staff/").get_data(as_text=True)


def test_an_admin_creates_a_site_and_it_is_audited(client, auth, world, session):
    auth.staff("admin")
    token = csrf_from(client, "/staff/admin/sites/new")
    r = client.post("/staff/admin/sites/new", data={
        "csrf_token": token, "code": "xm1", "name": "Xiamen One", "timezone": "Asia/Shanghai",
        "phone": "+86 592 1234 5678", "on_call_phone": "139 0000 1111", "emergency_phone": "120"})
    assert r.status_code == 302
    session.expire_all()
    site = session.exec(select(Site).where(Site.code == "XM1")).one()
    assert (site.name, site.on_call_phone) == ("Xiamen One", "+8613900001111")
    [event] = _events(session, "site_created")
    assert event.actor == f"staff:{world.staff['admin'].id}" and event.site_id == site.id
    assert "XM1" in client.get("/staff/admin/").get_data(as_text=True)


@pytest.mark.any_db
def test_a_site_with_an_unknown_time_zone_is_refused_with_a_message(client, auth, world, session):
    auth.staff("admin")
    token = csrf_from(client, "/staff/admin/sites/new")
    r = client.post("/staff/admin/sites/new", data={
        "csrf_token": token, "code": "XM2", "name": "Xiamen Two", "timezone": "Mars/Olympus",
        "phone": "+86 592 1", "emergency_phone": "120"})
    assert r.status_code == 400 and "Unknown time zone." in r.get_data(as_text=True)
    session.expire_all()
    assert session.exec(select(Site).where(Site.code == "XM2")).first() is None


def test_a_second_site_with_the_same_code_is_refused(client, auth, world):
    auth.staff("admin")
    token = csrf_from(client, "/staff/admin/sites/new")
    r = client.post("/staff/admin/sites/new", data={
        "csrf_token": token, "code": "a", "name": "Again", "timezone": "Asia/Shanghai", "phone": "+86 592 1",
        "emergency_phone": "120"})
    assert r.status_code == 400 and "already used" in r.get_data(as_text=True)


def test_an_admin_changes_a_sites_on_call_and_emergency_numbers(client, auth, world, session):
    auth.staff("admin")
    site_id = world.sites["A"].id
    token = csrf_from(client, f"/staff/admin/sites/{site_id}")
    r = client.post(f"/staff/admin/sites/{site_id}", data={
        "csrf_token": token, "name": "Site A", "timezone": "Asia/Urumqi", "phone": "+86-591-0000-0000",
        "on_call_phone": "+8613900009999", "emergency_phone": "112"})
    assert r.status_code == 302
    session.expire_all()
    site = session.get(Site, site_id)
    assert (site.timezone, site.on_call_phone, site.emergency_phone) == ("Asia/Urumqi", "+8613900009999", "112")
    [event] = _events(session, "site_updated")
    assert event.before == {"timezone": "Asia/Shanghai", "on_call_phone": "+8613900000000", "emergency_phone": "120"}


def test_a_new_colleague_signs_in_with_the_temporary_password_then_chooses_their_own(
        client, auth, world, session, app, clock):
    auth.staff("admin")
    token = csrf_from(client, "/staff/admin/staff/new")
    r = client.post("/staff/admin/staff/new", data={
        "csrf_token": token, "email": "New.Nurse@test.example", "name": "New Nurse", "role": "nurse",
        "sites": [str(world.sites["B"].id)]})
    assert r.status_code == 200
    temporary = re.search(r'<code class="secret">([^<]+)</code>', r.get_data(as_text=True)).group(1)
    staff = session.exec(select(StaffUser).where(StaffUser.email == "new.nurse@test.example")).one()
    assert staff.must_change_password and temporary not in staff.password_hash
    [event] = _events(session, "staff_created")
    assert event.after["sites"] == ["B"]
    assert temporary not in str(event.after)

    newcomer = new_client(app)
    r = _sign_in(newcomer, "new.nurse@test.example", temporary, None, clock)
    assert r.headers["Location"].startswith("/staff/login/setup-code")  # an authenticator first
    page = newcomer.get("/staff/login/setup-code").get_data(as_text=True)
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)
    token = csrf_from(newcomer, "/staff/login/setup-code")
    r = newcomer.post("/staff/login/setup-code", data={"csrf_token": token,
                                                       "code": pyotp.TOTP(secret).at(clock.now)})
    assert r.headers["Location"].startswith("/staff/login/new-password")
    assert newcomer.get("/staff/").status_code == 302  # no session before the new password
    token = csrf_from(newcomer, "/staff/login/new-password")
    r = newcomer.post("/staff/login/new-password", data={"csrf_token": token, "password": "my own long secret",
                                                          "password_confirm": "my own long secret"})
    assert r.status_code == 302 and r.headers["Location"] == "/staff/"
    assert newcomer.get("/staff/").status_code == 200
    session.expire_all()
    assert not session.get(StaffUser, staff.id).must_change_password
    assert len(_events(session, "staff_password_changed")) == 1


def test_the_temporary_password_cannot_be_kept(app, client, auth, world, session, clock):
    auth.staff("admin")
    nurse_id = world.staff["nurse_a"].id
    token = csrf_from(client, f"/staff/admin/staff/{nurse_id}")
    client.post(f"/staff/admin/staff/{nurse_id}/require-password-change", data={"csrf_token": token,
                                                                              "reason": "annual"})
    nurse = new_client(app)
    clock.advance(seconds=30)
    r = _sign_in(nurse, "nurse_a@test.example", PASSWORD, world.totp["nurse_a"], clock)
    assert r.headers["Location"].startswith("/staff/login/new-password")
    token = csrf_from(nurse, "/staff/login/new-password")
    r = nurse.post("/staff/login/new-password", data={"csrf_token": token, "password": PASSWORD,
                                                       "password_confirm": PASSWORD})
    assert r.status_code == 400 and "different" in r.get_data(as_text=True)
    assert nurse.get("/staff/").status_code == 302


def test_deactivating_an_account_ends_its_open_sessions_at_once(app, client, auth, world, session, clock):
    nurse = _signed_in(app, world, clock, "nurse_a")
    assert nurse.get("/staff/").status_code == 200
    auth.staff("admin")
    nurse_id = world.staff["nurse_a"].id
    token = csrf_from(client, f"/staff/admin/staff/{nurse_id}")
    r = client.post(f"/staff/admin/staff/{nurse_id}/deactivate", headers=HTMX,
                    data={"csrf_token": token, "reason": "Left the study team"})
    assert r.status_code == 200
    fragment = r.get_data(as_text=True)
    assert 'id="account-actions"' in fragment and "1 open session(s) ended" in fragment
    r = nurse.get("/staff/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/staff/login")
    [event] = _events(session, "staff_deactivated")
    assert event.reason == "Left the study team" and event.after == {"sessions_ended": 1}
    clock.advance(seconds=30)
    r = _sign_in(new_client(app), "nurse_a@test.example", PASSWORD, None, clock)
    assert r.status_code == 401 and "not active" in r.get_data(as_text=True)


@pytest.mark.any_db
def test_deactivating_without_a_reason_changes_nothing(client, auth, world, session):
    auth.staff("admin")
    nurse_id = world.staff["nurse_a"].id
    token = csrf_from(client, f"/staff/admin/staff/{nurse_id}")
    r = client.post(f"/staff/admin/staff/{nurse_id}/deactivate", headers=HTMX,
                    data={"csrf_token": token, "reason": ""})
    assert r.status_code == 422 and "Give a reason." in r.get_data(as_text=True)
    assert _staff(session, world, "nurse_a").is_active


@pytest.mark.any_db
def test_an_admin_cannot_deactivate_themselves(client, auth, world, session):
    auth.staff("admin")
    admin_id = world.staff["admin"].id
    token = csrf_from(client, "/staff/admin/")
    r = client.post(f"/staff/admin/staff/{admin_id}/deactivate", data={"csrf_token": token, "reason": "oops"})
    assert r.status_code == 400 and "your own account" in r.get_data(as_text=True)
    assert _staff(session, world, "admin").is_active


def test_moving_a_nurse_to_another_site_changes_what_she_sees(app, client, auth, world, session, clock):
    nurse = _signed_in(app, world, clock, "nurse_a")
    auth.staff("admin")
    nurse_id = world.staff["nurse_a"].id
    token = csrf_from(client, f"/staff/admin/staff/{nurse_id}")
    r = client.post(f"/staff/admin/staff/{nurse_id}", data={
        "csrf_token": token, "name": "nurse_a", "role": "nurse", "sites": [str(world.sites["B"].id)]})
    assert r.status_code == 302
    assert nurse.get("/staff/").status_code == 302  # the old scope's session is over
    session.expire_all()
    assert session.exec(select(StaffSite.site_id).where(StaffSite.staff_id == nurse_id)).all() == [
        world.sites["B"].id]
    [event] = _events(session, "staff_updated")
    assert (event.before["sites"], event.after["sites"]) == (["A"], ["B"])
    clock.advance(seconds=30)
    again = _signed_in(app, world, clock, "nurse_a")
    home = again.get("/staff/").get_data(as_text=True)
    assert mentions(home, "PB") and not mentions(home, "PA")


def test_resetting_the_authenticator_makes_the_next_sign_in_set_up_a_new_one(
        app, client, auth, world, session, clock):
    nurse = _signed_in(app, world, clock, "nurse_a")
    auth.staff("admin")
    nurse_id = world.staff["nurse_a"].id
    token = csrf_from(client, f"/staff/admin/staff/{nurse_id}")
    r = client.post(f"/staff/admin/staff/{nurse_id}/reset-totp", data={"csrf_token": token,
                                                                       "reason": "Phone lost"})
    assert r.status_code == 302
    assert nurse.get("/staff/").status_code == 302
    assert _staff(session, world, "nurse_a").totp_secret_enc is None
    r = _sign_in(new_client(app), "nurse_a@test.example", PASSWORD, None, clock)
    assert r.headers["Location"].startswith("/staff/login/setup-code")
    [event] = _events(session, "staff_totp_reset")
    assert event.reason == "Phone lost"


def test_a_role_change_is_audited_and_refused_for_oneself(client, auth, world, session):
    auth.staff("admin")
    admin_id = world.staff["admin"].id
    token = csrf_from(client, f"/staff/admin/staff/{admin_id}")
    r = client.post(f"/staff/admin/staff/{admin_id}", data={"csrf_token": token, "name": "admin",
                                                             "role": "nurse", "sites": [str(world.sites["A"].id)]})
    assert r.status_code == 400 and "your own role" in r.get_data(as_text=True)
    assert _staff(session, world, "admin").role == "admin"
    investigator_id = world.staff["investigator_a"].id
    r = client.post(f"/staff/admin/staff/{investigator_id}", data={
        "csrf_token": token, "name": "investigator_a", "role": "nurse", "sites": [str(world.sites["A"].id)]})
    assert r.status_code == 302
    [event] = _events(session, "staff_updated")
    assert (event.before, event.after) == ({"role": "investigator"}, {"role": "nurse", "sessions_ended": 0})


# --- quiet hours per site (no participant SMS in them) ---------------------------------------------

SITE_A = {"name": "Site A", "timezone": "Asia/Shanghai", "phone": "+86-591-0000-0000",
          "on_call_phone": "+8613900000000", "emergency_phone": "120"}


def _save_site(client, site_id, **fields):
    token = csrf_from(client, f"/staff/admin/sites/{site_id}")
    return client.post(f"/staff/admin/sites/{site_id}", data={"csrf_token": token, **SITE_A, **fields})


@pytest.mark.any_db
def test_an_admin_gives_a_site_its_own_quiet_hours_and_it_is_audited(client, auth, world, session):
    auth.staff("admin")
    site_id = world.sites["A"].id
    assert _save_site(client, site_id, quiet_start="20:00", quiet_end="06:30").status_code == 302
    session.expire_all()
    site = session.get(Site, site_id)
    assert (site.quiet_start.strftime("%H:%M"), site.quiet_end.strftime("%H:%M")) == ("20:00", "06:30")
    [event] = _events(session, "site_updated")
    assert event.actor == f"staff:{world.staff['admin'].id}"
    assert event.before == {"quiet_start": None, "quiet_end": None}
    assert event.after == {"quiet_start": "20:00:00", "quiet_end": "06:30:00"}
    listing = client.get("/staff/admin/").get_data(as_text=True)
    assert "20:00–06:30" in listing and "21:30–07:00 (study default)" in listing  # site B keeps the study's
    assert 'value="20:00"' in client.get(f"/staff/admin/sites/{site_id}").get_data(as_text=True)


def test_a_site_can_switch_quiet_hours_off_or_go_back_to_the_study_default(client, auth, world, session):
    auth.staff("admin")
    site_id = world.sites["A"].id
    assert _save_site(client, site_id, quiet_start="07:00", quiet_end="07:00").status_code == 302
    assert ">none<" in client.get("/staff/admin/").get_data(as_text=True).replace("</td>", "<")
    assert _save_site(client, site_id, quiet_start="", quiet_end="").status_code == 302
    session.expire_all()
    site = session.get(Site, site_id)
    assert (site.quiet_start, site.quiet_end) == (None, None)
    assert len(_events(session, "site_updated")) == 2


@pytest.mark.any_db
@pytest.mark.parametrize(("start", "end", "message"), [
    ("25:00", "07:00", "Use HH:MM, e.g. 21:30."),
    ("9pm", "07:00", "Use HH:MM, e.g. 21:30."),
    ("21:00", "0700", "Use HH:MM, e.g. 07:00."),
    ("21:00", "", "Give both times, or leave both empty for the study&#39;s quiet hours."),
    ("", "07:00", "Give both times, or leave both empty for the study&#39;s quiet hours."),
])
def test_bad_quiet_hours_are_refused_with_a_message_and_change_nothing(client, auth, world, session, start, end,
                                                                       message):
    auth.staff("admin")
    site_id = world.sites["A"].id
    r = _save_site(client, site_id, quiet_start=start, quiet_end=end, emergency_phone="112")
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    session.expire_all()
    site = session.get(Site, site_id)
    assert (site.quiet_start, site.quiet_end, site.emergency_phone) == (None, None, "120")
    assert _events(session, "site_updated") == []


@pytest.mark.any_db
def test_the_quiet_hours_refusal_is_in_chinese_for_a_chinese_admin(client, auth, world):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh"
    auth.staff("admin")
    r = _save_site(client, world.sites["A"].id, quiet_start="21:00", quiet_end="")
    assert r.status_code == 400 and "两个时间都填写，或都留空" in r.get_data(as_text=True)
