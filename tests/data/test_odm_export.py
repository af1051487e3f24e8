"""The CDISC ODM 1.3.2 export validates against the official schema (vendored in tests/standards)."""

from pathlib import Path

import pytest
from lxml import etree
from sqlmodel import select

from diary.models import AuditEvent
from tests.web.staff_helpers import english  # noqa: F401 - fixture

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "standards" / "cdisc-odm-1.3.2"
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}


@pytest.fixture(scope="module")
def schema():
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "ODM1-3-2.xsd")))


def test_the_odm_export_of_the_demo_data_validates_against_the_official_schema(app, runner, tmp_path, schema):
    assert runner.invoke(args=["demo"]).exit_code == 0
    path = tmp_path / "study.xml"
    result = runner.invoke(args=["export", "odm", str(path)])
    assert result.exit_code == 0, result.output
    doc = etree.parse(str(path))
    schema.assertValid(doc)
    assert doc.xpath("count(//odm:SubjectData)", namespaces=NS) >= 2
    assert doc.xpath("count(//odm:ItemGroupData[@ItemGroupOID='IG.DOSE'])", namespaces=NS) > 0
    assert doc.xpath("count(//odm:ItemGroupData[@ItemGroupOID='IG.LAB'])", namespaces=NS) > 0
    # Every item has its question in both languages.
    for item in doc.xpath("//odm:ItemDef", namespaces=NS):
        langs = item.xpath("odm:Question/odm:TranslatedText/@xml:lang", namespaces=NS)
        assert sorted(langs) == ["en", "zh"], item.get("OID")


@pytest.fixture
def records(app, session, world, clock):
    from diary.services import adverse_events, conmeds, symptoms
    from tests.web.staff_helpers import site_a_rows

    rows = site_a_rows(app, session, world, clock)
    cfg, rcfg = app.extensions["diary.study"], app.extensions["diary.records"]
    report = session.get(symptoms.SymptomReport, rows.report_id)
    symptoms.correct_symptoms(session, cfg, report=report, symptoms=[{"key": "petechiae", "severity": "mild"}],
                              reason="Participant meant the red spots", staff_id=world.staff["nurse_a"].id,
                              now=clock.now, client_key="fix-1")
    values = adverse_events.AeValues(term="other", term_text="Rash", grade=1, onset_date=clock.now.date(),
                                     end_date=None, serious=False, sae_criteria=(), relatedness="unlikely",
                                     action="dose_not_changed", outcome="recovering")
    adverse_events.record(session, rcfg, participant=world.participants["pa"], values=values,
                          staff_id=world.staff["nurse_a"].id, now=clock.now)
    conmeds.record(session, cfg, rcfg, participant=world.participants["pa"], drug="rhTPO 15000 U",
                   start_date=clock.now.date(), staff_id=world.staff["nurse_a"].id, now=clock.now)
    session.commit()
    return rows


def download(client, auth, who):
    auth.staff(who)
    r = client.post("/staff/export/odm", data={"csrf_token": auth.csrf("/staff/export")})
    assert r.status_code == 200 and r.mimetype == "application/xml"
    return etree.fromstring(r.data)


@pytest.mark.usefixtures("english")
def test_an_investigator_downloads_her_sites_with_reasons_for_change_and_no_phone_numbers(
        client, auth, world, records, schema, session):
    doc = download(client, auth, "investigator_a")
    schema.assertValid(doc)
    assert doc.xpath("//odm:SubjectData/@SubjectKey", namespaces=NS) == ["PA"]  # site A only
    reasons = doc.xpath("//odm:ItemGroupData[@ItemGroupOID='IG.SYMPTOM']//odm:ReasonForChange/text()",
                        namespaces=NS)
    assert reasons == ["Participant meant the red spots"]
    [ae] = doc.xpath("//odm:ItemGroupData[@ItemGroupOID='IG.AE']", namespaces=NS)
    assert ae.xpath("odm:ItemData[@ItemOID='IT.AE.TERM_TEXT']/@Value", namespaces=NS) == ["Rash"]
    assert doc.xpath("//odm:ItemData[@ItemOID='IT.CONMED.MATCHED']/@Value", namespaces=NS) == ["rhtpo"]
    assert doc.xpath("//odm:ItemData[@ItemOID='IT.DEVIATION.STATUS']/@Value", namespaces=NS) == ["proposed"]
    text = etree.tostring(doc, encoding="unicode")
    for phone in world.phones.values():
        assert phone not in text and phone[3:] not in text
    assert "nurse_a" not in text and "@test.example" not in text  # staff by id and role only
    session.expire_all()
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "odm_exported")).first() is not None


@pytest.mark.usefixtures("english")
def test_nurses_cannot_download_the_odm_file(client, auth, world, records):
    auth.staff("nurse_a")
    assert client.post("/staff/export/odm", data={"csrf_token": auth.csrf("/staff/")}).status_code == 403
