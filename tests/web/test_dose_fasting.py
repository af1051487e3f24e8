"""Fasting is yes / no / not sure, from every channel, and staff and the exports see it (issue 10, item 11)."""

import csv
import io
import uuid
import zipfile

import pytest
from lxml import etree

from diary.services import dosing
from tests.web.patient_helpers import csrf, day_url, logs, post
from tests.web.staff_helpers import english  # noqa: F401 - fixture

ODM = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}


@pytest.fixture
def pa(auth, client, world):
    auth.participant("pa")
    return world.participants["pa"]


def _sync(client, world, **overrides):
    token = client.get("/sync/csrf").get_json()["csrf_token"]
    body = {"client_key": str(uuid.uuid4()), "course_id": world.courses["pa"].id, "day": 3,
            "outcome": "taken", "taken_at": "2026-12-01T07:10:00+08:00"} | overrides
    return client.post("/sync/dose", json=body, headers={"X-CSRFToken": token})


@pytest.mark.any_db
def test_the_today_page_offers_yes_no_and_not_sure(client, pa):
    html = client.get("/").get_data(as_text=True)
    assert "Did you take it on an empty stomach?" in html
    for value, label in (("yes", "Yes, on an empty stomach"), ("no", "No, I had eaten"), ("unsure", "Not sure")):
        assert f'type="radio" id="fasting-3-{value}" name="fasting" value="{value}"' in html
        assert f'<label for="fasting-3-{value}">{label}</label>' in html


@pytest.mark.parametrize(("answer", "said"), [
    ("yes", "On an empty stomach."), ("no", "Not on an empty stomach."),
    ("unsure", "Not sure whether on an empty stomach.")])
def test_each_answer_on_the_page_is_stored_and_shown_back(client, pa, world, session, answer, said):
    post(client, day_url(world, "pa", 3, "taken"), csrf(client), fasting=answer)
    assert logs(session)[0].fasting == answer
    assert said in client.get("/").get_data(as_text=True)


def test_no_answer_is_stored_as_not_said(client, pa, world, session):
    post(client, day_url(world, "pa", 3, "taken"), csrf(client))
    [log] = logs(session)
    assert log.fasting is None
    assert "empty stomach." not in client.get("/").get_data(as_text=True).split("You took it")[1][:200]


def test_an_unknown_answer_is_refused_with_a_clear_message_and_nothing_stored(client, pa, world, session):
    r = post(client, day_url(world, "pa", 3, "taken"), csrf(client), fasting="maybe")
    assert r.status_code == 422
    assert "Please answer the empty-stomach question with yes, no or not sure." in r.get_data(as_text=True)
    assert logs(session) == []


@pytest.mark.parametrize("answer", ["no", "unsure"])
def test_offline_sync_carries_each_answer(client, pa, world, session, answer):
    assert _sync(client, world, fasting=answer).get_json()["ok"] is True
    assert logs(session)[0].fasting == answer


@pytest.mark.parametrize(("sent", "stored"), [(True, "yes"), (False, None)])
def test_a_phone_queue_from_the_earlier_page_still_syncs(client, pa, world, session, sent, stored):
    """Queued before this release: true was the ticked box, false an unticked one (not said)."""
    assert _sync(client, world, fasting=sent).get_json()["ok"] is True
    assert logs(session)[0].fasting == stored


def test_offline_sync_refuses_an_unknown_answer(client, pa, world, session):
    r = _sync(client, world, fasting=1)
    assert r.status_code == 422 and r.get_json()["error"] == "bad_fasting"
    assert logs(session) == []


@pytest.mark.usefixtures("english")
def test_staff_see_the_answer_in_the_timeline_and_can_record_it(client, auth, world, session, app, clock):
    dosing.log_dose(session, app.extensions["diary.study"], participant=world.participants["pa"],
                    course_id=world.courses["pa"].id, day=3, outcome="taken", client_key="fasting-no",
                    source="participant", now=clock.now, fasting="no")
    session.commit()
    auth.staff("nurse_a")
    url = f"/staff/participants/{world.participants['pa'].id}"
    html = client.get(url).get_data(as_text=True)
    assert "not on an empty stomach" in html
    assert 'name="fasting"' in html and ">not sure</option>" in html
    r = client.post(f"/staff/courses/{world.courses['pa'].id}/doses", data={
        "csrf_token": auth.csrf(url), "course_day": 2, "outcome": "taken", "taken_time": "07:00",
        "fasting": "unsure", "not_taken_reason": "", "reason": "Told the nurse on the phone"})
    assert r.status_code == 302
    assert [log.fasting for log in logs(session)] == ["no", "unsure"]


def _dose_with(session, app, world, clock, answer):
    dosing.log_dose(session, app.extensions["diary.study"], participant=world.participants["pa"],
                    course_id=world.courses["pa"].id, day=3, outcome="taken", client_key=f"f-{answer}",
                    source="participant", now=clock.now, fasting=answer)
    session.commit()


@pytest.mark.usefixtures("english")
def test_the_csv_export_carries_the_answer_and_its_dictionary_says_what_it_means(
        client, auth, world, session, app, clock):
    _dose_with(session, app, world, clock, "unsure")
    auth.staff("investigator_a")
    r = client.post("/staff/export", data={"csrf_token": auth.csrf("/staff/export")})
    archive = zipfile.ZipFile(io.BytesIO(r.data))
    [row] = list(csv.DictReader(io.StringIO(archive.read("dose_logs.csv").decode("utf-8-sig"))))
    assert row["fasting"] == "unsure"
    assert "yes, no or unsure" in archive.read([n for n in archive.namelist() if "dictionary" in n][0]).decode()


@pytest.mark.usefixtures("english")
def test_the_odm_export_carries_the_answer_as_text(client, auth, world, session, app, clock):
    _dose_with(session, app, world, clock, "no")
    auth.staff("investigator_a")
    r = client.post("/staff/export/odm", data={"csrf_token": auth.csrf("/staff/export")})
    doc = etree.fromstring(r.data)
    assert doc.xpath("//odm:ItemData[@ItemOID='IT.DOSE.FASTING']/@Value", namespaces=ODM) == ["no"]
    [item] = doc.xpath("//odm:ItemDef[@OID='IT.DOSE.FASTING']", namespaces=ODM)
    assert item.get("DataType") == "text"
