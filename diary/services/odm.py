"""The study as one CDISC ODM 1.3.2 XML file, streamed (issue 12).

Metadata for every form and item (English and Chinese labels as TranslatedText), then the clinical
data of every participant, pseudonymous (SubjectKey = study number; staff appear as user ids and
roles). Every stored version of a record is one ItemGroupData transaction with its AuditRecord (who,
where, when, ReasonForChange, SourceID); a signed dose decision also carries a Signature. Written
with lxml's incremental `xmlfile` a batch of participants at a time, so memory stays flat however
many participants the study has (bench/odm_export.py measures it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import IO, Any

from lxml import etree
from sqlmodel import Session, select

from diary import audit, course_record
from diary.course_record import CourseRecord
from diary.models import (
    AdverseEvent,
    ConcomitantMedication,
    Course,
    DoseDecision,
    DoseLog,
    DrugAccountability,
    LabResult,
    Participant,
    ProtocolDeviation,
    SaeReport,
    Site,
    StaffUser,
    SymptomReport,
)
from diary.services.course_records import load_records
from diary.services.odm_forms import EVENTS, FORMS, Form
from diary.study import StudyConfig

NS = "http://www.cdisc.org/ns/odm/v1.3"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MDV = "MDV.1"
BATCH = 200  # participants loaded and written at a time


def q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _text(parent: etree._Element, tag: str, en: str, zh: str) -> None:
    holder = etree.SubElement(parent, q(tag))
    for lang, text in (("en", en), ("zh", zh)):
        etree.SubElement(holder, q("TranslatedText"), {XML_LANG: lang}).text = text


def _value(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def metadata(cfg: StudyConfig) -> etree._Element:
    study = etree.Element(q("Study"), OID=cfg.study_id)
    gv = etree.SubElement(study, q("GlobalVariables"))
    etree.SubElement(gv, q("StudyName")).text = cfg.study_id
    etree.SubElement(gv, q("StudyDescription")).text = (
        "Hetrombopag olamine tablets after ADC chemotherapy in breast cancer: dosing diary")
    etree.SubElement(gv, q("ProtocolName")).text = cfg.study_id
    mdv = etree.SubElement(study, q("MetaDataVersion"), OID=MDV, Name="Hetrombopag dosing diary")
    protocol = etree.SubElement(mdv, q("Protocol"))
    for n, event in enumerate(EVENTS, start=1):
        etree.SubElement(protocol, q("StudyEventRef"), StudyEventOID=f"SE.{event}", OrderNumber=str(n),
                         Mandatory="No")
    for event, (en, zh, repeating, kind) in EVENTS.items():
        se = etree.SubElement(mdv, q("StudyEventDef"), OID=f"SE.{event}", Name=en, Repeating=repeating, Type=kind)
        _text(se, "Description", en, zh)
        for n, form in enumerate((f for f in FORMS if f.event == event), start=1):
            etree.SubElement(se, q("FormRef"), FormOID=f"FORM.{form.key}", OrderNumber=str(n), Mandatory="No")
    for form in FORMS:
        fd = etree.SubElement(mdv, q("FormDef"), OID=f"FORM.{form.key}", Name=form.en, Repeating="No")
        _text(fd, "Description", form.en, form.zh)
        etree.SubElement(fd, q("ItemGroupRef"), ItemGroupOID=f"IG.{form.key}", Mandatory="No")
    for form in FORMS:
        ig = etree.SubElement(mdv, q("ItemGroupDef"), OID=f"IG.{form.key}", Name=form.en, Repeating="Yes")
        _text(ig, "Description", form.en, form.zh)
        for n, item in enumerate(form.items, start=1):
            etree.SubElement(ig, q("ItemRef"), ItemOID=f"IT.{form.key}.{item.name.upper()}", OrderNumber=str(n),
                             Mandatory="No")
    for form in FORMS:
        for item in form.items:
            idef = etree.SubElement(mdv, q("ItemDef"), OID=f"IT.{form.key}.{item.name.upper()}", Name=item.name,
                                    DataType=item.data_type)
            _text(idef, "Question", item.en, item.zh)
    return study


def admin_data(session: Session, cfg: StudyConfig, sites: list[Site]) -> etree._Element:
    """Users (staff ids and roles only, plus the non-staff actors) and sites; a signature definition."""
    admin = etree.Element(q("AdminData"), StudyOID=cfg.study_id)
    for oid, kind in (("USR.participant", "Other"), ("USR.sms", "Other"), ("USR.system", "Other")):
        user = etree.SubElement(admin, q("User"), OID=oid, UserType=kind)
        etree.SubElement(user, q("LoginName")).text = oid.removeprefix("USR.")
    for staff_id, role in session.exec(select(StaffUser.id, StaffUser.role).order_by(StaffUser.id)).all():
        user = etree.SubElement(admin, q("User"), OID=f"USR.staff.{staff_id}",
                                UserType="Investigator" if role == "investigator" else "Other")
        etree.SubElement(user, q("LoginName")).text = f"staff:{staff_id} ({role})"
    for site in sites:
        loc = etree.SubElement(admin, q("Location"), OID=f"LOC.{site.code}", Name=site.code, LocationType="Site")
        etree.SubElement(loc, q("MetaDataVersionRef"), StudyOID=cfg.study_id, MetaDataVersionOID=MDV,
                         EffectiveDate=site.created_at.date().isoformat())
    sd = etree.SubElement(admin, q("SignatureDef"), OID="SD.DECISION", Methodology="Electronic")
    etree.SubElement(sd, q("Meaning")).text = "Dose decision signed by the investigator"
    etree.SubElement(sd, q("LegalReason")).text = (
        "Electronic signature with re-entry of the password (21 CFR Part 11)")
    return admin


@dataclass
class Batch:
    """Every row of a batch of participants, grouped for writing."""

    courses: dict[int, list[Course]]
    by_course: dict[str, dict[int, list]]
    by_participant: dict[str, dict[int, list]]
    records: dict[int, CourseRecord]  # course id → the course record every page and job reads

    def rows(self) -> Iterable:
        for group in (self.courses, *self.by_course.values(), *self.by_participant.values()):
            for rows in group.values():
                yield from rows


def _group(rows: Iterable, attr: str) -> dict[int, list]:
    grouped: dict[int, list] = defaultdict(list)
    for row in rows:
        grouped[getattr(row, attr)].append(row)
    return grouped


def _load(session: Session, ids: list[int]) -> Batch:
    courses = list(session.exec(select(Course).where(Course.participant_id.in_(ids)).order_by(Course.cycle_number)))
    course_ids = [c.id for c in courses]
    by_course = {
        name: _group(session.exec(select(model).where(model.course_id.in_(course_ids)).order_by(model.id)),
                     "course_id") if course_ids else {}
        for name, model in (("DOSE", DoseLog), ("LAB", LabResult), ("DECISION", DoseDecision),
                            ("DRUG", DrugAccountability))}
    by_participant = {
        name: _group(session.exec(select(model).where(model.participant_id.in_(ids)).order_by(model.id)),
                     "participant_id")
        for name, model in (("SYMPTOM", SymptomReport), ("AE", AdverseEvent), ("SAEREPORT", SaeReport),
                            ("CONMED", ConcomitantMedication), ("DEVIATION", ProtocolDeviation))}
    return Batch(_group(courses, "participant_id"), by_course, by_participant,
                 load_records(session, Course.participant_id.in_(ids)))


def _actor(row) -> str:
    for attr in ("staff_id", "entered_by", "decided_by", "reported_by", "created_by"):
        staff = getattr(row, attr, None)
        if staff:
            return f"USR.staff.{staff}"
    source = getattr(row, "source", None)
    return {"sms": "USR.sms"}.get(source, "USR.participant" if source == "participant" else "USR.system")


def _stamp(row) -> datetime | None:
    for attr in ("received_at", "entered_at", "signed_at", "created_at"):
        value = getattr(row, attr, None)
        if value is not None:
            return value
    return None


def _item_group(form: Form, key: Any, row, site_oid: str, *, update: bool = False, audited: bool = True) -> Any:
    ig = etree.Element(q("ItemGroupData"), ItemGroupOID=f"IG.{form.key}", ItemGroupRepeatKey=str(key),
                       TransactionType="Update" if update else "Insert")
    if audited:
        record = etree.SubElement(ig, q("AuditRecord"))
        etree.SubElement(record, q("UserRef"), UserOID=_actor(row))
        etree.SubElement(record, q("LocationRef"), LocationOID=site_oid)
        etree.SubElement(record, q("DateTimeStamp")).text = _value(_stamp(row))
        reason = getattr(row, "correction_reason", None) or (
            getattr(row, "reason", None) if isinstance(row, ProtocolDeviation) else None)
        if reason:
            etree.SubElement(record, q("ReasonForChange")).text = reason
        etree.SubElement(record, q("SourceID")).text = f"{type(row).__name__}:{row.id}"
        if isinstance(row, DoseDecision):
            sig = etree.SubElement(ig, q("Signature"))
            etree.SubElement(sig, q("UserRef"), UserOID=f"USR.staff.{row.decided_by}")
            etree.SubElement(sig, q("LocationRef"), LocationOID=site_oid)
            etree.SubElement(sig, q("SignatureRef"), SignatureOID="SD.DECISION")
            etree.SubElement(sig, q("DateTimeStamp")).text = _value(row.signed_at)
    for item in form.items:
        value = _value(item.value(row) if item.value else getattr(row, item.name, None))
        if value is not None:
            etree.SubElement(ig, q("ItemData"), ItemOID=f"IT.{form.key}.{item.name.upper()}", Value=value)
    return ig


def _versions(form: Form, rows: list, site_oid: str, chain: Callable[[Any], Any]) -> list:
    """Each stored version: the first an Insert, a correction an Update of the same repeat key."""
    first: dict[int, Any] = {}
    out = []
    for row in rows:  # in id order, so what a row supersedes came before it
        key = first.get(row.supersedes_id, chain(row)) if getattr(row, "supersedes_id", None) else chain(row)
        first[row.id] = key
        out.append(_item_group(form, key, row, site_oid, update=bool(getattr(row, "supersedes_id", None))))
    return out


FORM = {f.key: f for f in FORMS}


def _subject(p: Participant, site_code: str, batch: Batch, cfg: StudyConfig, now: datetime) -> etree._Element:
    site_oid = f"LOC.{site_code}"
    subject = etree.Element(q("SubjectData"), SubjectKey=p.study_number, TransactionType="Insert")
    etree.SubElement(subject, q("SiteRef"), LocationOID=site_oid)
    for course in batch.courses.get(p.id, []):
        event = etree.SubElement(subject, q("StudyEventData"), StudyEventOID="SE.COURSE",
                                 StudyEventRepeatKey=str(course.cycle_number))
        groups = [_item_group(FORM["COURSE"], course.cycle_number, course, site_oid)]
        logs = batch.by_course["DOSE"].get(course.id, [])
        # The derived day statuses, from the same function every page and job reads (DESIGN §3).
        groups += [_item_group(FORM["DAY"], d.day, d, site_oid, audited=False)
                   for d in course_record.course_days(batch.records[course.id], cfg, now)]
        groups += _versions(FORM["DOSE"], logs, site_oid, lambda r: r.course_day)
        for name in ("LAB", "DECISION", "DRUG"):
            groups += _versions(FORM[name], batch.by_course[name].get(course.id, []), site_oid, lambda r: r.id)
        _form_data(event, groups)
    common = [(name, batch.by_participant[name].get(p.id, []))
              for name in ("SYMPTOM", "AE", "SAEREPORT", "CONMED", "DEVIATION")]
    if any(rows for _n, rows in common):
        event = etree.SubElement(subject, q("StudyEventData"), StudyEventOID="SE.COMMON")
        groups = []
        for name, rows in common:
            groups += _versions(FORM[name], rows, site_oid, lambda r: getattr(r, "first_id", None) or r.id)
        _form_data(event, groups)
    return subject


def _form_data(event: etree._Element, groups: list) -> None:
    by_form: dict[str, list] = defaultdict(list)
    for group in groups:
        by_form[group.get("ItemGroupOID").removeprefix("IG.")].append(group)
    for form in FORMS:
        if by_form.get(form.key):
            fd = etree.SubElement(event, q("FormData"), FormOID=f"FORM.{form.key}")
            fd.extend(by_form[form.key])


def write_odm(session: Session, cfg: StudyConfig, out: IO[bytes], *, sites: frozenset[int] | None,
              actor: str, now: datetime) -> dict:
    """Stream the ODM document for `sites` (None: every site) into `out`; returns counts.

    The export is audit-trailed in the caller's transaction, like the CSV zip."""
    site_q = select(Site).order_by(Site.code)
    if sites is not None:
        site_q = site_q.where(Site.id.in_(sorted(sites)))
    site_rows = list(session.exec(site_q).all())
    codes = {s.id: s.code for s in site_rows}
    id_q = select(Participant.id).where(Participant.site_id.in_(list(codes))).order_by(Participant.id)
    participant_ids = list(session.exec(id_q).all())
    attrs = {"FileType": "Transactional", "Granularity": "All", "FileOID": f"{cfg.study_id}.{now:%Y%m%dT%H%M%SZ}",
             "CreationDateTime": now.astimezone(UTC).isoformat(), "ODMVersion": "1.3.2",
             "SourceSystem": "hetrombopag-diary"}
    with etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(q("ODM"), attrs, nsmap={None: NS}):
            xf.write(metadata(cfg))
            xf.write(admin_data(session, cfg, site_rows))
            with xf.element(q("ClinicalData"), StudyOID=cfg.study_id, MetaDataVersionOID=MDV):
                for start in range(0, len(participant_ids), BATCH):
                    ids = participant_ids[start:start + BATCH]
                    people = session.exec(select(Participant).where(Participant.id.in_(ids))
                                          .order_by(Participant.id)).all()
                    batch = _load(session, ids)
                    for p in people:
                        xf.write(_subject(p, codes[p.site_id], batch, cfg, now))
                    # Let go of this batch's rows before loading the next (only these: the caller's
                    # own objects, such as the signed-in user, stay in its session).
                    for row in [*people, *batch.rows()]:
                        session.expunge(row)
                    xf.flush()
    counts = {"participants": len(participant_ids)}
    audit.record(session, actor=actor, action="odm_exported", entity="Export", at=now,
                 after={"sites": "all" if sites is None else sorted(sites), **counts})
    return counts
