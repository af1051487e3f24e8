"""The flask commands in the README, run through the CLI runner (STYLE: Flask tutorial)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from sqlalchemy import inspect
from sqlmodel import select

from diary import create_app
from diary.models import AuditEvent, Participant, Site, StaffSite, StaffUser
from tests.conftest import csrf_from

STAFF_PASSWORD = "a long enough password"


def _fresh(session):
    session.rollback()
    session.expire_all()
    return session


def test_create_site_adds_a_site_and_audits_it(runner, session):
    result = runner.invoke(args=["create-site", "--code", "fz1", "--name", "Fuzhou One", "--phone", "+86-591-1"])
    assert result.exit_code == 0, result.output
    site = _fresh(session).exec(select(Site).where(Site.code == "FZ1")).one()
    assert (site.name, site.timezone) == ("Fuzhou One", "Asia/Shanghai")
    assert session.exec(select(AuditEvent.action).where(AuditEvent.entity_id == str(site.id))).all() == [
        "site_created"]


def test_create_staff_asks_for_the_password_and_stores_only_its_hash(runner, session, world):
    result = runner.invoke(args=["create-staff", "--email", "New.Nurse@Test.example", "--name", "New",
                                 "--role", "nurse", "--site", "a"],
                           input=f"{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    staff = _fresh(session).exec(select(StaffUser).where(StaffUser.email == "new.nurse@test.example")).one()
    assert STAFF_PASSWORD not in staff.password_hash
    assert PasswordHasher().verify(staff.password_hash, STAFF_PASSWORD)
    assert session.exec(select(StaffSite.site_id).where(StaffSite.staff_id == staff.id)).all() == [
        world.sites["A"].id]


def test_create_staff_refuses_a_password_shorter_than_twelve_characters(runner, session, world):
    result = runner.invoke(args=["create-staff", "--email", "short@test.example", "--name", "Short",
                                 "--role", "admin"], input="elevenchars\nelevenchars\n")
    assert result.exit_code == 2
    assert "at least 12 characters" in result.output
    assert _fresh(session).exec(select(StaffUser).where(StaffUser.email == "short@test.example")).first() is None


def test_create_staff_refuses_a_nurse_without_a_site(runner, session, world):
    result = runner.invoke(args=["create-staff", "--email", "x@test.example", "--name", "X", "--role", "nurse",
                                 "--password", STAFF_PASSWORD])
    assert result.exit_code == 2
    assert _fresh(session).exec(select(StaffUser).where(StaffUser.email == "x@test.example")).first() is None


def test_a_staff_account_made_on_the_command_line_can_sign_in(app, runner, client, world):
    runner.invoke(args=["create-staff", "--email", "boss@test.example", "--name", "Boss", "--role", "admin",
                        "--password", STAFF_PASSWORD])
    token = csrf_from(client, "/staff/login")
    r = client.post("/staff/login", data={"csrf_token": token, "email": "boss@test.example",
                                          "password": STAFF_PASSWORD})
    # No authenticator yet: the first sign-in sets one up.
    assert r.headers["Location"].startswith("/staff/login/setup-code")


def _enroll(runner, number="PC", phone="139 0000 3333"):
    return runner.invoke(args=["enroll", "--site", "a", "--study-number", number, "--cohort", "secondary",
                               "--phone", phone, "--staff-email", "nurse_a@test.example", "--language", "en"])


def test_enroll_prints_an_activation_link_that_works(app, runner, client, world, session):
    result = _enroll(runner)
    assert result.exit_code == 0, result.output
    link = re.search(r"https?://\S+/activate/\S+", result.output).group(0)
    path = urlsplit(link).path
    assert client.get(path).status_code == 200
    token = csrf_from(client, path)
    r = client.post(path, data={"csrf_token": token, "pin": "8080", "pin_confirm": "8080"})
    assert r.status_code == 302
    assert client.get("/").status_code == 200
    participant = _fresh(session).exec(select(Participant).where(Participant.study_number == "PC")).one()
    assert (participant.cohort, participant.language) == ("secondary", "en")


def test_enroll_refuses_a_phone_number_already_enrolled(runner, session, world):
    result = _enroll(runner, phone=world.phones["pa"])
    assert result.exit_code == 2
    assert "phone" in result.output
    assert _fresh(session).exec(select(Participant).where(Participant.study_number == "PC")).first() is None


def test_enroll_never_prints_the_phone_number_into_the_audit_trail(runner, session, world):
    _enroll(runner)
    trail = " ".join(str(e.after) for e in _fresh(session).exec(select(AuditEvent)).all())
    assert "13900003333" not in trail


def test_demo_seeds_data_and_prints_how_to_sign_in(runner, session):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "Demo data created." in result.output
    assert "nurse@demo.test" in result.output
    assert len(re.findall(r"/activate/\S+", result.output)) >= 5
    assert len(_fresh(session).exec(select(Participant)).all()) >= 6


def test_demo_can_run_again_and_prints_fresh_links(runner, session):
    first = runner.invoke(args=["demo"])
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0, second.output
    assert "already present" in second.output
    first_links = set(re.findall(r"/activate/\S+", first.output))
    second_links = set(re.findall(r"/activate/\S+", second.output))
    assert second_links and not first_links & second_links
    assert len(_fresh(session).exec(select(Site).where(Site.code == "DEMO")).all()) == 1


def test_scheduler_tick_runs_at_the_instant_given(runner, world):
    result = runner.invoke(args=["scheduler", "tick", "--now", "2026-12-01T09:00+08:00"])
    assert result.exit_code == 0, result.output
    assert result.output.strip()


def test_scheduler_tick_refuses_an_instant_without_an_offset(runner, world):
    result = runner.invoke(args=["scheduler", "tick", "--now", "2026-12-01T09:00"])
    assert result.exit_code == 2
    assert "offset" in result.output


def test_scheduler_tick_refuses_something_that_is_not_an_instant(runner, world):
    result = runner.invoke(args=["scheduler", "tick", "--now", "tomorrow morning"])
    assert result.exit_code == 2
    assert "--now" in result.output


def test_migrate_builds_the_schema_in_an_empty_database(empty_database_url):
    app = create_app({"TESTING": True, "DATABASE_URL": empty_database_url, "SECRET_KEY": "k",
                      "DATA_ENCRYPTION_KEY": "k", "RATELIMIT_ENABLED": False})
    try:
        result = app.test_cli_runner().invoke(args=["migrate"])
        assert result.exit_code == 0, result.output
        tables = set(inspect(app.extensions["diary.engine"]).get_table_names())
        assert {"participant", "doselog", "auditevent", "message", "alembic_version"} <= tables
        again = app.test_cli_runner().invoke(args=["migrate"])
        assert again.exit_code == 0, again.output
    finally:
        app.extensions["diary.engine"].dispose()


def test_create_site_takes_the_emergency_number_and_platelet_lln(runner, session):
    result = runner.invoke(args=["create-site", "--code", "hk1", "--name", "HK One", "--phone", "+852-1",
                                 "--emergency-phone", "999", "--plt-lln", "150"])
    assert result.exit_code == 0, result.output
    site = session.exec(select(Site).where(Site.code == "HK1")).one()
    assert (site.emergency_phone, site.plt_lln) == ("999", 150)


def test_a_site_created_without_them_gets_120_and_the_study_lln(runner, session):
    runner.invoke(args=["create-site", "--code", "fz2", "--name", "Fuzhou Two", "--phone", "+86-591-2"])
    site = session.exec(select(Site).where(Site.code == "FZ2")).one()
    assert (site.emergency_phone, site.plt_lln) == ("120", None)


def test_create_site_takes_the_sites_own_quiet_hours(runner, session):
    result = runner.invoke(args=["create-site", "--code", "ur1", "--name", "Urumqi One", "--phone", "+86-991-1",
                                 "--timezone", "Asia/Urumqi", "--quiet-start", "23:00", "--quiet-end", "09:00"])
    assert result.exit_code == 0, result.output
    site = session.exec(select(Site).where(Site.code == "UR1")).one()
    assert (site.quiet_start.strftime("%H:%M"), site.quiet_end.strftime("%H:%M")) == ("23:00", "09:00")


def test_create_site_refuses_half_a_quiet_window(runner, session):
    result = runner.invoke(args=["create-site", "--code", "ur2", "--name", "Urumqi Two", "--phone", "+86-991-2",
                                 "--quiet-start", "23:00"])
    assert result.exit_code != 0 and "quiet_end" in result.output
    assert session.exec(select(Site).where(Site.code == "UR2")).first() is None
