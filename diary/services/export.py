"""The data export: a zip of CSV files, one per table, with a data dictionary.

Pseudonymous by construction: each file lists the columns it exports (never "every column"), people
are named by study number, and phone numbers, encrypted fields, hashes, PINs, one-time codes and
message bodies are not among them. Dates are ISO 8601; instants are UTC with an explicit offset.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from diary import audit, course_record
from diary.models import (
    AdverseEvent,
    AuditEvent,
    ConcomitantMedication,
    Course,
    DoseChangeAck,
    DoseDecision,
    DoseLog,
    DrugAccountability,
    Flag,
    LabResult,
    Message,
    Participant,
    ProtocolDeviation,
    SaeReport,
    Screening,
    Site,
    StaffUser,
    SymptomReport,
)
from diary.services.course_records import load_records
from diary.study import StudyConfig


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    value: Callable[[Any, dict], Any]


@dataclass(frozen=True)
class Table:
    file: str
    description: str
    model: type
    columns: tuple[Column, ...]
    # How the table reaches a site: the scope filter (None: every row of the export's sites).
    scope: Callable[[Any, frozenset[int] | None], Any] | None = None


def _attr(name: str) -> Callable[[Any, dict], Any]:
    return lambda row, _ctx: getattr(row, name)


def _study_number(attr: str = "participant_id") -> Callable[[Any, dict], Any]:
    return lambda row, ctx: ctx["study_numbers"].get(getattr(row, attr))


def _course_study_number(row, ctx) -> str | None:
    return ctx["study_numbers"].get(ctx["course_participant"].get(row.course_id))


def col(name: str, type_: str, description: str, value: Callable | None = None) -> Column:
    return Column(name, type_, description, value or _attr(name))


STUDY_NUMBER = col("study_number", "text", "Participant's study number (pseudonym)", _study_number())
COURSE_STUDY_NUMBER = col("study_number", "text", "Participant's study number", _course_study_number)


def _site_scope(model):
    return lambda q, sites: q if sites is None else q.where(model.site_id.in_(sorted(sites)))


def _participant_scope(model):
    return lambda q, sites: q if sites is None else q.where(model.participant_id.in_(
        select(Participant.id).where(Participant.site_id.in_(sorted(sites)))))


def _course_scope(model):
    return lambda q, sites: q if sites is None else q.where(model.course_id.in_(
        select(Course.id).join(Participant).where(Participant.site_id.in_(sorted(sites)))))


TABLES: tuple[Table, ...] = (
    Table("sites.csv", "Study sites", Site, (
        col("id", "integer", "Site id"), col("code", "text", "Site code"), col("name", "text", "Site name"),
        col("timezone", "text", "IANA time zone of the site's calendar")),
        lambda q, sites: q if sites is None else q.where(Site.id.in_(sorted(sites)))),
    Table("participants.csv", "Enrolled participants (no contact details)", Participant, (
        col("study_number", "text", "Study number (pseudonym)"),
        col("site_id", "integer", "Site id (sites.csv)"),
        col("cohort", "text", "primary (cohort 1) or secondary (cohort 2)"),
        col("language", "text", "Language of the diary and messages (zh, en)"),
        col("timezone", "text", "IANA time zone of the participant's calendar"),
        col("reminder_time", "text", "Local reminder time HH:MM"),
        col("sms_opt_in", "boolean", "Receives SMS (false after STOP)"),
        col("status", "text", "active, withdrawn or completed"),
        col("screening_id", "integer", "Screening the enrolment was based on (screenings.csv)"),
        col("enrolled_by", "integer", "Staff id who enrolled"),
        col("enrolled_at", "datetime", "Enrolment instant"),
        col("ended_at", "datetime", "Withdrawal or completion instant"),
        col("ended_by", "integer", "Staff id who withdrew or completed"),
        col("end_reason", "text", "Reason for withdrawal or completion")), _site_scope(Participant)),
    Table("screenings.csv", "Signed screening checklists", Screening, (
        col("id", "integer", "Screening id"), col("site_id", "integer", "Site id"),
        col("screening_number", "text", "Screening log number"), col("cohort", "text", "Cohort screened for"),
        col("screened_on", "date", "Screening date"), col("eligible", "boolean", "Outcome"),
        col("failed_criteria", "json", "Keys of every failed criterion (see screening.toml)"),
        col("answers", "json", "Screening values, yes/no answers and each criterion's result"),
        col("signed_by", "integer", "Staff id who signed"), col("signed_at", "datetime", "Signature instant"),
        col("supersedes_id", "integer", "Screening this one corrects")), _site_scope(Screening)),
    Table("courses.csv", "One row per ADC administration and its hetrombopag course", Course, (
        col("id", "integer", "Course id"), STUDY_NUMBER, col("cycle_number", "integer", "Cycle number"),
        col("adc_drug", "text", "ADC given (study.toml adc_drugs)"),
        col("infusion_date", "date", "ADC infusion date"), col("start_date", "date", "Course day 1"),
        col("starting_dose_mg", "number", "Starting dose, mg/day"),
        col("created_by", "integer", "Staff id"), col("created_at", "datetime", "Recorded at"),
        col("voided_at", "datetime", "Voided (entered in error): excluded from reminders and adherence"),
        col("voided_by", "integer", "Staff id who voided it"), col("void_reason", "text", "Why it was voided"),
        col("last_day", "integer", "Ended early: last course day dosed (empty: the full course)"),
        col("ended_early_by", "integer", "Staff id who ended it early"),
        col("end_early_reason", "text", "Why it ended early")),
        _participant_scope(Course)),
    Table("lab_results.csv", "Blood counts (superseded rows kept; see supersedes_id)", LabResult, (
        col("id", "integer", "Result id"), col("course_id", "integer", "Course id"), COURSE_STUDY_NUMBER,
        col("course_day", "integer", "Course day (0 = baseline)"), col("drawn_on", "date", "Draw date"),
        col("plt", "number", "Platelets ×10⁹/L"), col("hb", "number", "Haemoglobin g/L"),
        col("anc", "number", "Neutrophils ×10⁹/L"), col("entered_by", "integer", "Staff id"),
        col("entered_at", "datetime", "Entered at"), col("supersedes_id", "integer", "Row this corrects"),
        col("correction_reason", "text", "Why it was corrected")), _course_scope(LabResult)),
    Table("dose_decisions.csv", "Signed dose decisions", DoseDecision, (
        col("id", "integer", "Decision id"), col("course_id", "integer", "Course id"), COURSE_STUDY_NUMBER,
        col("effective_day", "integer", "First course day it applies to"),
        col("dose_mg", "number", "Prescribed mg/day (0 = hold)"), col("action", "text", "Decided action"),
        col("suggested_action", "text", "Rule table's suggestion"),
        col("suggested_dose_mg", "number", "Suggested mg/day"), col("rule", "text", "Rule applied"),
        col("lab_result_id", "integer", "Blood count that prompted it"),
        col("override_reason", "text", "Why the investigator departed from the suggestion"),
        col("decided_by", "integer", "Investigator's staff id"), col("signed_at", "datetime", "Signed at"),
        col("supersedes_id", "integer", "Decision this replaces")), _course_scope(DoseDecision)),
    Table("dose_change_acks.csv", "The participant's \"I understand\" of a signed dose change", DoseChangeAck, (
        col("id", "integer", "Acknowledgement id"), col("decision_id", "integer", "Decision acknowledged"),
        STUDY_NUMBER, col("acknowledged_at", "datetime", "Tapped at")), _participant_scope(DoseChangeAck)),
    Table("dose_logs.csv", "Dose records (corrections supersede; nothing is deleted)", DoseLog, (
        col("id", "integer", "Record id"), col("course_id", "integer", "Course id"), COURSE_STUDY_NUMBER,
        col("course_day", "integer", "Course day"), col("outcome", "text", "taken, not_taken or retracted"),
        col("taken_at", "datetime", "Time the participant says the dose was taken"),
        col("reason", "text", "Why not taken"),
        col("fasting", "text", "Taken on an empty stomach: yes, no or unsure (empty: not said)"),
        col("dose_mg", "number", "Prescribed mg/day in force when it was recorded"),
        col("tablets", "integer", "Prescribed tablets in force when it was recorded"),
        col("source", "text", "participant, staff or sms"), col("staff_id", "integer", "Staff id if staff"),
        col("received_at", "datetime", "Received by the server"),
        col("supersedes_id", "integer", "Record this corrects"),
        col("correction_reason", "text", "Staff correction reason")), _course_scope(DoseLog)),
    Table("symptom_reports.csv", "Symptom reports", SymptomReport, (
        col("id", "integer", "Report id"), STUDY_NUMBER, col("course_id", "integer", "Course id"),
        col("noticed_at", "datetime", "When the participant noticed it"),
        col("symptoms", "json", "[{key, severity}] (study.toml symptoms)"),
        col("danger", "boolean", "A danger answer was given"), col("note", "text", "Free-text note"),
        col("source", "text", "participant, staff or sms"), col("staff_id", "integer", "Staff id if staff"),
        col("received_at", "datetime", "Received by the server"),
        col("supersedes_id", "integer", "Report this corrects"),
        col("correction_reason", "text", "Staff correction reason")), _participant_scope(SymptomReport)),
    Table("messages.csv", "SMS sent or queued (no numbers, no text)", Message, (
        col("id", "integer", "Message id"), STUDY_NUMBER, col("kind", "text", "Message kind"),
        col("status", "text", "Delivery status"), col("not_before", "datetime", "Earliest send time"),
        col("attempts", "integer", "Send attempts"), col("sent_at", "datetime", "Sent at"),
        col("created_at", "datetime", "Queued at")), _site_scope(Message)),
    Table("flags.csv", "Flags raised for staff and how they were handled", Flag, (
        col("id", "integer", "Flag id"), STUDY_NUMBER, col("kind", "text", "Flag kind"),
        col("detail", "text", "What was flagged"), col("raised_at", "datetime", "Raised at"),
        col("acknowledged_by", "integer", "Staff id"), col("acknowledged_at", "datetime", "Acknowledged at"),
        col("ack_note", "text", "Acknowledgement note")), _site_scope(Flag)),
    Table("drug_accountability.csv", "Study tablets dispensed and returned (corrections supersede)",
          DrugAccountability, (
        col("id", "integer", "Entry id"), STUDY_NUMBER, col("course_id", "integer", "Course id"),
        col("kind", "text", "dispensed or returned"), col("on_date", "date", "Date dispensed or returned"),
        col("tablets", "integer", "Tablets"), col("bottles", "integer", "Bottles"),
        col("strength_mg", "number", "Tablet strength, mg"), col("lot_number", "text", "Lot number"),
        col("expiry", "date", "Lot expiry date"),
        col("warnings", "json", "Lot warnings shown and accepted (expired, expires_during_course, wrong_strength)"),
        col("staff_id", "integer", "Staff id who dispensed or received"), col("entered_at", "datetime", "Entered at"),
        col("supersedes_id", "integer", "Entry this corrects"),
        col("correction_reason", "text", "Why it was corrected")),
        _participant_scope(DrugAccountability)),
    Table("adverse_events.csv", "Adverse events (each version; first_id names the AE, corrections supersede)",
          AdverseEvent, (
        col("id", "integer", "Version id"), col("first_id", "integer", "The AE's first version (empty: this one)"),
        STUDY_NUMBER, col("course_id", "integer", "Course id"), col("status", "text", "draft or recorded"),
        col("term", "text", "CTCAE v5.0 term key (records.toml) or other"), col("term_text", "text", "Free-text term"),
        col("grade", "integer", "CTCAE v5.0 grade"), col("onset_date", "date", "Onset date"),
        col("end_date", "date", "End date (empty: ongoing)"), col("serious", "boolean", "Serious adverse event"),
        col("sae_criteria", "json", "ICH E2A seriousness criteria"),
        col("relatedness", "text", "Relatedness to hetrombopag"), col("action", "text", "Action with the study drug"),
        col("outcome", "text", "Outcome"), col("description", "text", "Description"),
        col("source_kind", "text", "Drafted from: symptom_report or lab_result"),
        col("source_id", "integer", "Id of the source report or blood count"),
        col("staff_id", "integer", "Staff id"), col("entered_at", "datetime", "Entered at"),
        col("supersedes_id", "integer", "Version this replaces"), col("correction_reason", "text", "Why it changed")),
        _participant_scope(AdverseEvent)),
    Table("sae_reports.csv", "SAEs reported to the sponsor (stops the 24-hour clock)", SaeReport, (
        col("id", "integer", "Report id"), col("adverse_event_id", "integer", "The AE (its first version)"),
        STUDY_NUMBER, col("reported_at", "datetime", "When it was reported"),
        col("reported_by", "integer", "Investigator's staff id"), col("note", "text", "How and to whom"),
        col("entered_at", "datetime", "Entered at")), _participant_scope(SaeReport)),
    Table("concomitant_medications.csv", "Concomitant medications (corrections supersede)", ConcomitantMedication, (
        col("id", "integer", "Entry id"), STUDY_NUMBER, col("drug", "text", "Medicine"), col("dose", "text", "Dose"),
        col("route", "text", "Route"), col("start_date", "date", "Start date"),
        col("stop_date", "date", "Stop date (empty: ongoing)"), col("indication", "text", "Indication"),
        col("matched", "json", "Prohibited/restricted list keys it matched (records.toml conmeds)"),
        col("retracted", "boolean", "Entered in error"), col("staff_id", "integer", "Staff id"),
        col("entered_at", "datetime", "Entered at"), col("supersedes_id", "integer", "Entry this corrects"),
        col("correction_reason", "text", "Why it was corrected")), _participant_scope(ConcomitantMedication)),
    Table("protocol_deviations.csv", "Protocol deviations (each version; first_id names the deviation)",
          ProtocolDeviation, (
        col("id", "integer", "Version id"), col("first_id", "integer", "The deviation's first version"),
        STUDY_NUMBER, col("status", "text", "proposed, confirmed, dismissed or closed"),
        col("category", "text", "Category (records.toml deviations.categories)"),
        col("description", "text", "Description"), col("occurred_on", "date", "Date of the deviation"),
        col("classification", "text", "minor or major"),
        col("found_by", "text", "staff:<id>, or system for a software proposal"),
        col("finding_key", "text", "What the software found (proposals)"),
        col("conmed_id", "integer", "Medication that prompted it"), col("staff_id", "integer", "Who made this version"),
        col("entered_at", "datetime", "Entered at"), col("supersedes_id", "integer", "Version this replaces"),
        col("reason", "text", "Why it was confirmed, dismissed, corrected or closed")),
        _participant_scope(ProtocolDeviation)),
    Table("staff.csv", "Staff who appear in the data (ids and roles only)", StaffUser, (
        col("id", "integer", "Staff id"), col("role", "text", "nurse, investigator or admin"))),
    Table("audit_events.csv", "The hash-chained audit trail", AuditEvent, (
        col("id", "integer", "Event id"), col("at", "datetime", "Instant"), col("actor", "text", "Who"),
        col("action", "text", "What"), col("entity", "text", "Table"), col("entity_id", "text", "Row id"),
        col("site_id", "integer", "Site id"), STUDY_NUMBER,
        col("before", "json", "Values before"), col("after", "json", "Values after"),
        col("reason", "text", "Why"), col("prev_hash", "text", "Previous event's hash"),
        col("hash", "text", "This event's hash")), _site_scope(AuditEvent)),
)


# Derived, not stored: each course day's status at the instant of the export, read from the same
# course records as the today page, the scheduler and the adherence grid (one source for each fact).
DOSE_DAYS = Table("dose_days.csv", "Each course day's status at export time (derived from the records above)", Course, (
    col("course_id", "integer", "Course id"), col("study_number", "text", "Participant's study number"),
    col("course_day", "integer", "Course day"), col("date", "date", "Local date of the course day"),
    col("prescribed_mg", "number", "Prescribed mg that day (0 = held)"),
    col("status", "text", "upcoming, due, taken, not_taken, missed, held, paused (clinical-review pause: "
                          "neither taken nor missed) or ended (after the end of participation)")))


def _dose_days(session: Session, cfg: StudyConfig, sites: frozenset[int] | None, now: datetime) -> list[list]:
    where = [] if sites is None else [Participant.site_id.in_(sorted(sites))]
    rows = []
    for record in sorted(load_records(session, *where, log_details=False).values(), key=lambda r: r.course_id):
        for index, status in enumerate(course_record.day_statuses(record, cfg, now)):
            rows.append([record.course_id, record.study_number, index + 1,
                         record.day1 + timedelta(days=index), course_record.doses(record, cfg)[index], status.value])
    return rows


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()  # aware by construction (UTCDateTime)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _rows(session: Session, table: Table, sites: frozenset[int] | None) -> Iterable:
    query = select(table.model).order_by(table.model.id)
    if table.scope is not None:
        query = table.scope(query, sites)
    return session.exec(query).all()


def build_export(session: Session, *, sites: frozenset[int] | None, actor_id: int, now: datetime,
                 cfg: StudyConfig) -> bytes:
    """The zip for `sites` (None: every site), audit-trailed in the caller's transaction."""
    participant_q = select(Participant.id, Participant.study_number)
    course_q = select(Course.id, Course.participant_id)
    ctx = {"study_numbers": dict(session.exec(participant_q).all()),
           "course_participant": dict(session.exec(course_q).all())}
    counts: dict[str, int] = {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for table in TABLES:
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow([c.name for c in table.columns])
            rows = _rows(session, table, sites)
            for row in rows:
                writer.writerow([_csv_value(c.value(row, ctx)) for c in table.columns])
            counts[table.file] = len(rows)
            archive.writestr(table.file, out.getvalue())
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([c.name for c in DOSE_DAYS.columns])
        days = _dose_days(session, cfg, sites, now)
        writer.writerows([_csv_value(v) for v in row] for row in days)
        counts[DOSE_DAYS.file] = len(days)
        archive.writestr(DOSE_DAYS.file, out.getvalue())
        archive.writestr("data_dictionary.csv", data_dictionary())
    audit.record(session, actor=f"staff:{actor_id}", action="data_exported", entity="Export", at=now,
                 after={"sites": "all" if sites is None else sorted(sites), "rows": counts})
    return buffer.getvalue()


def data_dictionary() -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "column", "type", "description"])
    for table in (*TABLES, DOSE_DAYS):
        writer.writerow([table.file, "", "table", table.description])
        for c in table.columns:
            writer.writerow([table.file, c.name, c.type, c.description])
    writer.writerow(["*", "", "conventions",
                     "date: ISO 8601 YYYY-MM-DD (local calendar date); datetime: ISO 8601 instant in UTC "
                     "with offset +00:00; json: JSON text; boolean: true/false; empty: no value"])
    return out.getvalue()
