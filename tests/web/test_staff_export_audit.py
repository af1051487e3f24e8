"""The export (pseudonymous, audit-trailed) and the audit trail of staff actions."""

import csv
import io
import re
import zipfile

import pytest
from sqlalchemy import text
from sqlmodel import select

from diary import audit
from diary.models import AuditEvent, DoseLog, SymptomReport
from tests.web.staff_helpers import (
    english,  # noqa: F401 - fixture
    site_a_rows,
)

pytestmark = pytest.mark.usefixtures("english")
ISO_INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")


@pytest.fixture
def rows(app, session, world, clock):
    return site_a_rows(app, session, world, clock)


def download(client, auth, who):
    auth.staff(who)
    r = client.post("/staff/export", data={"csrf_token": auth.csrf("/staff/export")})
    assert r.status_code == 200 and r.mimetype == "application/zip"
    return zipfile.ZipFile(io.BytesIO(r.data))


def test_the_export_holds_one_csv_per_table_and_a_data_dictionary(client, auth, world, rows):
    archive = download(client, auth, "admin")
    names = set(archive.namelist())
    assert {"participants.csv", "courses.csv", "lab_results.csv", "dose_decisions.csv", "dose_change_acks.csv",
            "dose_logs.csv",
            "symptom_reports.csv", "screenings.csv", "flags.csv", "audit_events.csv",
            "data_dictionary.csv"} <= names
    dictionary = list(csv.DictReader(io.StringIO(archive.read("data_dictionary.csv").decode())))
    for name in names - {"data_dictionary.csv"}:
        header = next(csv.reader(io.StringIO(archive.read(name).decode())))
        assert {d["column"] for d in dictionary if d["file"] == name} - {""} == set(header)


def test_the_export_contains_no_phone_numbers_or_secrets(client, auth, world, rows):
    archive = download(client, auth, "admin")
    everything = "".join(archive.read(name).decode() for name in archive.namelist())
    for phone in world.phones.values():
        assert phone not in everything and phone[3:] not in everything
    for column in ("phone_enc", "phone_hash", "pin_hash", "to_enc", "client_key", "password", "totp", "email"):
        assert column not in everything
    assert "PA" in everything  # participants appear by study number


def test_instants_are_iso_8601_with_an_offset_and_dates_are_iso(client, auth, world, rows):
    archive = download(client, auth, "admin")
    participants = list(csv.DictReader(io.StringIO(archive.read("participants.csv").decode())))
    assert all(ISO_INSTANT.match(p["enrolled_at"]) for p in participants)
    courses = list(csv.DictReader(io.StringIO(archive.read("courses.csv").decode())))
    assert all(re.match(r"^\d{4}-\d\d-\d\d$", c["start_date"]) for c in courses)


def test_an_investigator_exports_only_her_sites_and_the_export_is_audited(client, auth, world, rows, session):
    archive = download(client, auth, "investigator_a")
    participants = archive.read("participants.csv").decode()
    assert "PA" in participants and "PB" not in participants
    assert "PB" not in archive.read("courses.csv").decode()
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "data_exported")).one()
    assert event.actor == f"staff:{world.staff['investigator_a'].id}"
    assert event.after["rows"]["participants.csv"] == 1


def test_a_staff_dose_correction_needs_a_reason_and_writes_an_audit_event(client, auth, world, session):
    auth.staff("nurse_a")
    course = world.courses["pa"]
    data = {"csrf_token": auth.csrf("/staff/"), "course_day": "1", "outcome": "not_taken",
            "not_taken_reason": "forgot", "reason": ""}
    client.post(f"/staff/courses/{course.id}/doses", data=data)
    assert session.exec(select(DoseLog)).all() == []
    data["reason"] = "Told the nurse by phone"
    client.post(f"/staff/courses/{course.id}/doses", data=data)
    log = session.exec(select(DoseLog)).one()
    assert (log.source, log.outcome, log.correction_reason) == ("staff", "not_taken", "Told the nurse by phone")
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "dose_logged")).one().reason


def test_a_symptom_correction_needs_a_reason_and_supersedes(client, auth, world, rows, session):
    auth.staff("nurse_a")
    url = f"/staff/symptoms/{rows.report_id}/correct"
    assert client.post(url, data={"csrf_token": auth.csrf("/staff/"), "sym-nosebleed": "mild",
                                  "reason": ""}).status_code == 400
    r = client.post(url, data={"csrf_token": auth.csrf("/staff/"), "sym-nosebleed": "mild",
                               "reason": "She meant a nosebleed"})
    assert r.status_code == 302
    reports = session.exec(select(SymptomReport).order_by(SymptomReport.id)).all()
    assert reports[-1].supersedes_id == rows.report_id and reports[-1].symptoms == [
        {"key": "nosebleed", "severity": "mild"}]
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "symptom_report_superseded")).one()
    assert event.reason == "She meant a nosebleed" and event.before["symptoms"][0]["key"] == "bruising"


def test_the_participants_audit_view_lists_who_did_what_and_why(client, auth, world, rows):
    auth.staff("nurse_a")
    html = client.get(f"/staff/participants/{world.participants['pa'].id}/audit").get_data(as_text=True)
    assert "participant_enrolled" in html and "lab_entered" in html and "nurse_a" in html
    assert world.phones["pa"] not in html


def test_sign_in_and_screening_write_audit_events(client, auth, world, rows, session):
    auth.staff("nurse_a")
    actions = session.exec(select(AuditEvent.action)).all()
    assert "staff_signed_in" in actions and "screening_signed" in actions


def test_audit_verify_catches_a_row_edited_behind_the_apps_back(runner, app, world, rows, session):
    untouched = runner.invoke(args=["audit", "verify"])
    assert untouched.exit_code == 0, untouched.output
    target = session.exec(select(AuditEvent).where(AuditEvent.action == "lab_entered")).one()
    with app.extensions["diary.engine"].begin() as conn:
        # A direct UPDATE bypasses the app's append-only guard, as a tamperer with SQL access would.
        conn.execute(text("UPDATE auditevent SET reason = 'tampered' WHERE id = :id"), {"id": target.id})
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"BROKEN at event {target.id}" in result.output
    session.expire_all()
    assert audit.verify(session).first_broken_id == target.id
