"""Adverse events: the AE log, drafts from a danger report or a critical PLT, SAEs and their 24-hour clock.

Append-only: every save is a new row superseding the previous one (`first_id` names the AE); a
change to a recorded AE needs a reason. An AE that becomes serious raises one `sae` flag (the
scheduler turns it into an on-call SMS) and starts the reporting clock, which stops when an
investigator records that the SAE was reported to the sponsor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from diary import audit, course_record, records, study
from diary.models import AdverseEvent, Course, LabResult, Participant, SaeReport, SymptomReport
from diary.records import OTHER_TERM, RecordsConfig
from diary.services.flag_details import detail
from diary.services.flags import raise_flag
from diary.study import StudyConfig

FIELDS = ("term", "term_text", "grade", "onset_date", "end_date", "serious", "sae_criteria", "relatedness",
          "action", "outcome", "description")


class AdverseEventError(ValueError):
    def __init__(self, field: str, code: str):
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code


@dataclass(frozen=True)
class AeValues:
    term: str
    term_text: str | None
    grade: int | None
    onset_date: date | None
    end_date: date | None
    serious: bool
    sae_criteria: tuple[str, ...]
    relatedness: str | None
    action: str | None
    outcome: str | None
    description: str | None = None


def validate(values: AeValues, rcfg: RecordsConfig, today: date) -> None:
    """Refuse an incomplete or inconsistent AE, naming the field."""
    rules = rcfg.adverse_events
    if values.term != OTHER_TERM and rules.term(values.term) is None:
        raise AdverseEventError("term", "unknown")
    if values.term == OTHER_TERM and not (values.term_text or "").strip():
        raise AdverseEventError("term_text", "required")
    if values.grade not in rules.grades:
        raise AdverseEventError("grade", "invalid")
    if values.onset_date is None:
        raise AdverseEventError("onset_date", "required")
    if values.onset_date > today:
        raise AdverseEventError("onset_date", "in_future")
    if values.end_date is not None and (values.end_date < values.onset_date or values.end_date > today):
        raise AdverseEventError("end_date", "invalid")
    if values.serious and not values.sae_criteria:
        raise AdverseEventError("sae_criteria", "required")
    if not values.serious and values.sae_criteria:
        raise AdverseEventError("sae_criteria", "not_serious")
    if any(c not in rules.sae_criteria for c in values.sae_criteria):
        raise AdverseEventError("sae_criteria", "invalid")
    for name, allowed in (("relatedness", rules.relatedness), ("action", rules.actions),
                          ("outcome", rules.outcomes)):
        if getattr(values, name) not in allowed:
            raise AdverseEventError(name, "invalid")


def chain_id(ae: AdverseEvent) -> int:
    return ae.first_id or ae.id


def _snapshot(ae: AdverseEvent) -> dict:
    return {"status": ae.status, "source": [ae.source_kind, ae.source_id]} | {f: getattr(ae, f) for f in FIELDS}


def _store(session: Session, ae: AdverseEvent, participant: Participant, now: datetime,
           previous: AdverseEvent | None) -> AdverseEvent:
    session.add(ae)
    session.flush()
    action = "ae_drafted" if ae.status == "draft" else ("ae_recorded" if previous is None or
                                                        previous.status == "draft" else "ae_superseded")
    audit.record(session, actor=f"staff:{ae.staff_id}", action=action, entity="AdverseEvent", entity_id=ae.id,
                 site_id=participant.site_id, participant_id=participant.id, at=now, reason=ae.correction_reason,
                 before=_snapshot(previous) if previous else None, after=_snapshot(ae))
    if ae.serious:
        label = ae.term_text or ae.term
        raise_flag(session, key=f"sae:{chain_id(ae)}", kind="sae", site_id=participant.site_id,
                   participant_id=participant.id, now=now,
                   detail=detail("sae", term=label, grade=ae.grade))
    return ae


def _draft(session: Session, *, participant: Participant, course_id: int | None, term: str, grade: int | None,
           onset: date, source_kind: str, source_id: int, staff_id: int, now: datetime,
           description: str | None) -> AdverseEvent:
    existing = session.exec(select(AdverseEvent).where(
        AdverseEvent.source_kind == source_kind, AdverseEvent.source_id == source_id,
        AdverseEvent.supersedes_id.is_(None))).first()
    if existing is not None:
        return current_of(session, existing)
    ae = AdverseEvent(participant_id=participant.id, course_id=course_id, status="draft", term=term, grade=grade,
                      onset_date=onset, source_kind=source_kind, source_id=source_id, staff_id=staff_id,
                      entered_at=now, description=description)
    try:
        # The partial unique index on the source: two staff pressing the button at once get one AE.
        with session.begin_nested():
            session.add(ae)
    except IntegrityError:
        session.expire_all()
        raced = session.exec(select(AdverseEvent).where(
            AdverseEvent.source_kind == source_kind, AdverseEvent.source_id == source_id,
            AdverseEvent.supersedes_id.is_(None))).one()
        return current_of(session, raced)
    return _store(session, ae, participant, now, None)


def draft_from_symptoms(session: Session, rcfg: RecordsConfig, *, report: SymptomReport, staff_id: int,
                        now: datetime) -> AdverseEvent:
    """One step from a danger report to an AE draft linked to it (or the AE already drafted from it)."""
    participant = session.get(Participant, report.participant_id)
    keys = [s["key"] for s in report.symptoms]
    return _draft(session, participant=participant, course_id=report.course_id,
                  term=records.draft_term_for_symptoms(keys, rcfg.adverse_events), grade=None,
                  onset=study.local_date(report.noticed_at, participant.timezone),
                  source_kind="symptom_report", source_id=report.id, staff_id=staff_id, now=now,
                  description=report.note)


def draft_from_lab(session: Session, cfg: StudyConfig, rcfg: RecordsConfig, *, lab: LabResult, staff_id: int,
                   now: datetime) -> AdverseEvent:
    """One step from a critical blood count to a 'platelet count decreased' draft, graded by CTCAE."""
    course = session.get(Course, lab.course_id)
    participant = session.get(Participant, course.participant_id)
    return _draft(session, participant=participant, course_id=course.id,
                  term=records.draft_term_for_plt(rcfg.adverse_events), grade=study.platelet_grade(lab.plt, cfg),
                  onset=lab.drawn_on, source_kind="lab_result", source_id=lab.id, staff_id=staff_id, now=now,
                  description=f"PLT {lab.plt:g}×10⁹/L, course day {lab.course_day}")


def record(session: Session, rcfg: RecordsConfig, *, participant: Participant, values: AeValues, staff_id: int,
           now: datetime, course_id: int | None = None, supersedes: AdverseEvent | None = None,
           reason: str | None = None) -> AdverseEvent:
    """A new AE, the completion of a draft, or a correction of a recorded AE (reason required)."""
    validate(values, rcfg, study.local_date(now, participant.timezone))
    reason = (reason or "").strip()
    if supersedes is not None:
        if supersedes.participant_id != participant.id:
            raise AdverseEventError("entry", "invalid")
        if supersedes.status == "recorded" and not reason:
            raise AdverseEventError("reason", "required")
    ae = AdverseEvent(
        participant_id=participant.id, course_id=supersedes.course_id if supersedes else course_id,
        first_id=chain_id(supersedes) if supersedes else None, status="recorded",
        term=values.term, term_text=(values.term_text or "").strip()[:200] or None, grade=values.grade,
        onset_date=values.onset_date, end_date=values.end_date, serious=values.serious,
        sae_criteria=list(values.sae_criteria), relatedness=values.relatedness, action=values.action,
        outcome=values.outcome, description=(values.description or "").strip()[:1000] or None,
        source_kind=supersedes.source_kind if supersedes else None,
        source_id=supersedes.source_id if supersedes else None, staff_id=staff_id, entered_at=now,
        supersedes_id=supersedes.id if supersedes else None, correction_reason=reason[:500] or None)
    try:
        # supersedes_id is unique: only the latest version can be corrected, even by two people at once.
        with session.begin_nested():
            session.add(ae)
    except IntegrityError:
        raise AdverseEventError("entry", "already_corrected") from None
    return _store(session, ae, participant, now, supersedes)


def current_of(session: Session, ae: AdverseEvent) -> AdverseEvent:
    """The latest version of the AE `ae` belongs to."""
    rows = session.exec(select(AdverseEvent).where(
        (AdverseEvent.id == chain_id(ae)) | (AdverseEvent.first_id == chain_id(ae)))).all()
    return max(rows, key=lambda r: r.id)


def current_events(rows: list[AdverseEvent]) -> list[AdverseEvent]:
    return sorted(course_record.current(rows), key=lambda r: r.id, reverse=True)


def aware_at(chain: list[AdverseEvent]) -> datetime | None:
    """When the site first recorded the AE as serious: the start of the reporting clock."""
    serious = [r.entered_at for r in chain if r.serious]
    return min(serious) if serious else None


@dataclass(frozen=True)
class SaeClock:
    ae: AdverseEvent
    study_number: str
    aware_at: datetime
    deadline: datetime
    left: timedelta

    @property
    def overdue(self) -> bool:
        return self.left.total_seconds() < 0


def open_sae_clocks(session: Session, rcfg: RecordsConfig, sites: frozenset[int] | None,
                    now: datetime) -> list[SaeClock]:
    """SAEs not yet reported, most urgent first."""
    chain = func.coalesce(AdverseEvent.first_id, AdverseEvent.id)
    query = (select(AdverseEvent, Participant.study_number)
             .join(Participant, Participant.id == AdverseEvent.participant_id)
             .where(chain.in_(select(func.coalesce(AdverseEvent.first_id, AdverseEvent.id))
                              .where(AdverseEvent.serious)))
             .where(chain.not_in(select(SaeReport.adverse_event_id))))
    if sites is not None:
        query = query.where(Participant.site_id.in_(sorted(sites)))
    chains: dict[int, list[AdverseEvent]] = {}
    numbers: dict[int, str] = {}
    for ae, number in session.exec(query).all():
        chains.setdefault(chain_id(ae), []).append(ae)
        numbers[chain_id(ae)] = number
    clocks = []
    for first, chain in chains.items():
        latest = max(chain, key=lambda r: r.id)
        started = aware_at(chain)
        if not latest.serious or started is None:
            continue  # downgraded by a correction
        clocks.append(SaeClock(latest, numbers[first], started, records.sae_deadline(started, rcfg.adverse_events),
                               records.sae_time_left(started, now, rcfg.adverse_events)))
    return sorted(clocks, key=lambda c: c.deadline)


def reported(session: Session, ae: AdverseEvent) -> SaeReport | None:
    return session.exec(select(SaeReport).where(SaeReport.adverse_event_id == chain_id(ae))).first()


def mark_reported(session: Session, *, ae: AdverseEvent, staff_id: int, reported_at: datetime, note: str | None,
                  now: datetime) -> SaeReport:
    """The investigator states the SAE went to the sponsor; once per AE (unique), stops the clock."""
    latest = current_of(session, ae)
    participant = session.get(Participant, ae.participant_id)
    if not latest.serious:
        raise AdverseEventError("entry", "not_serious")
    if reported_at > now + timedelta(minutes=5) or study.local_date(reported_at, participant.timezone) < (
            latest.onset_date or date.min):
        raise AdverseEventError("reported_at", "invalid")
    participant = session.get(Participant, ae.participant_id)
    report = SaeReport(adverse_event_id=chain_id(ae), participant_id=participant.id, reported_at=reported_at,
                       reported_by=staff_id, note=(note or "").strip()[:500] or None, entered_at=now)
    try:
        with session.begin_nested():
            session.add(report)
    except IntegrityError:
        raise AdverseEventError("entry", "already_reported") from None
    audit.record(session, actor=f"staff:{staff_id}", action="sae_reported", entity="SaeReport",
                 entity_id=report.id, site_id=participant.site_id, participant_id=participant.id, at=now,
                 reason=report.note, after={"adverse_event_id": report.adverse_event_id, "reported_at": reported_at})
    return report
