"""Dose decisions: the software suggests, an investigator decides and signs (DESIGN §2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from diary import audit
from diary.models import Course, DoseChangeAck, DoseDecision, LabResult, Participant, Site, StaffUser, course_not_voided
from diary.services import review
from diary.study import (
    DoseSuggestion,
    StudyConfig,
    date_of_day,
    dose_for_day,
    local_date,
    platelet_grade,
    suggest_dose,
)


class DecisionError(ValueError):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def sign_decision(
    session: Session,
    cfg: StudyConfig,
    *,
    course: Course,
    signer: StaffUser,
    effective_day: int,
    dose_mg: float,
    current_dose_mg: float,
    now: datetime,
    lab: LabResult | None = None,
    baseline_plt: float | None = None,
    override_reason: str | None = None,
) -> DoseDecision:
    """Record a signed change. Only investigators sign; departing from the suggestion needs a reason;
    a change takes effect today at the earliest (issue 10, finding 8: a backdated hold turned days
    already logged as taken into held days and hid them from adherence).
    The caller has re-authenticated the signer (21 CFR Part 11 signature bound to the person)."""
    if signer.role != "investigator":
        raise DecisionError("not_investigator")
    if dose_mg not in cfg.dose_levels_mg:
        raise DecisionError("dose_not_a_level")
    if not 1 <= effective_day <= cfg.course_length_days:
        raise DecisionError("no_such_day")
    participant = session.get(Participant, course.participant_id)
    if date_of_day(course.start_date, effective_day, cfg) < local_date(now, participant.timezone):
        raise DecisionError("effective_day_past")
    suggestion = suggest_dose(current_dose_mg, lab.plt, baseline_plt, cfg) if lab else None
    if suggestion and dose_mg != suggestion.dose_mg and not (override_reason or "").strip():
        raise DecisionError("reason_required")
    if dose_mg == 0:
        action = "hold"
    elif dose_mg > current_dose_mg:
        action = "resume" if current_dose_mg == 0 else "increase"
    elif dose_mg < current_dose_mg:
        action = "reduce"
    else:
        action = "continue"
    decision = DoseDecision(
        course_id=course.id, effective_day=effective_day, dose_mg=dose_mg, action=action,
        suggested_action=suggestion.action if suggestion else None,
        suggested_dose_mg=suggestion.dose_mg if suggestion else None,
        rule=suggestion.rule if suggestion else None, lab_result_id=lab.id if lab else None,
        override_reason=(override_reason or "").strip() or None, decided_by=signer.id,
        signed_at=now,
    )
    session.add(decision)
    session.flush()
    audit.record(session, actor=f"staff:{signer.id}", action="dose_decision_signed",
                 entity="DoseDecision", entity_id=decision.id, site_id=participant.site_id,
                 participant_id=participant.id, at=now, reason=decision.override_reason,
                 after={"course_id": course.id, "effective_day": effective_day,
                        "dose_mg": dose_mg, "action": action, "rule": decision.rule})
    pause = review.open_pause_of(session, course.id)
    if pause is not None:
        # A signed decision is the clinician's answer to the review: it closes the pause.
        review.close_pause(session, pause=pause, staff_id=signer.id, kind="decision", now=now,
                           note=decision.override_reason, decision_id=decision.id)
    return decision


def acknowledge_change(session: Session, *, participant: Participant, decision_id: int,
                       now: datetime) -> DoseChangeAck | None:
    """The participant's "I understand" of a signed change to their own dose; returns the stored
    acknowledgement, or None when one was stored before (a double tap, a second phone: the unique
    decision_id keeps one). DecisionError("no_such_decision") for anyone else's decision."""
    owner = session.exec(
        select(Course.participant_id).join(DoseDecision, DoseDecision.course_id == Course.id)
        .where(DoseDecision.id == decision_id, course_not_voided())).first()
    if owner is None or owner != participant.id:
        raise DecisionError("no_such_decision")
    ack = DoseChangeAck(decision_id=decision_id, participant_id=participant.id, acknowledged_at=now)
    try:
        with session.begin_nested():
            session.add(ack)
    except IntegrityError:
        return None  # acknowledged a moment ago, on this phone or another
    audit.record(session, actor=f"participant:{participant.id}", action="dose_change_acknowledged",
                 entity="DoseChangeAck", entity_id=ack.id, site_id=participant.site_id,
                 participant_id=participant.id, at=now, after={"decision_id": decision_id})
    return ack


@dataclass(frozen=True)
class Proposal:
    """What the rule table suggests after a PLT: shown to staff, never applied until signed."""

    lab: LabResult
    grade: int
    current_dose_mg: float
    baseline_plt: float | None
    suggestion: DoseSuggestion


def course_decisions(session: Session, course: Course) -> list[DoseDecision]:
    """Signed decisions in signing order (the order that decides, see study.dose_for_day)."""
    return list(session.exec(select(DoseDecision).where(DoseDecision.course_id == course.id)
                             .order_by(DoseDecision.id)).all())


def dose_in_force(course: Course, decisions: list[DoseDecision], day: int) -> float:
    return dose_for_day(day, course.starting_dose_mg, [(d.effective_day, d.dose_mg) for d in decisions])


def propose(session: Session, cfg: StudyConfig, *, course: Course, lab: LabResult,
            effective_day: int) -> Proposal:
    """The rule table's suggestion for `lab`, against the dose in force on `effective_day`."""
    from diary.services.labs import baseline_plt, course_labs

    current = dose_in_force(course, course_decisions(session, course), effective_day)
    baseline = baseline_plt(course_labs(session, course)) if lab.course_day > 0 else None
    site = session.get(Site, session.get(Participant, course.participant_id).site_id)
    return Proposal(lab=lab, grade=platelet_grade(lab.plt, cfg, site.plt_lln), current_dose_mg=current,
                    baseline_plt=baseline, suggestion=suggest_dose(current, lab.plt, baseline, cfg))
