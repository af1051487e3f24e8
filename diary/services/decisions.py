"""Dose decisions: the software suggests, an investigator decides and signs (DESIGN §2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from diary import audit
from diary.crypto import DataCipher
from diary.messaging import outbox
from diary.models import Course, DoseDecision, LabResult, Participant, StaffUser
from diary.study import (
    DoseSuggestion,
    StudyConfig,
    date_of_day,
    dose_for_day,
    platelet_grade,
    quiet_hours_end,
    suggest_dose,
    tablet_count,
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
    """Record a signed change. Only investigators sign; departing from the suggestion needs a reason.
    The caller has re-authenticated the signer (21 CFR Part 11 signature bound to the person)."""
    if signer.role != "investigator":
        raise DecisionError("not_investigator")
    if dose_mg not in cfg.dose_levels_mg:
        raise DecisionError("dose_not_a_level")
    if not 1 <= effective_day <= cfg.course_length_days:
        raise DecisionError("no_such_day")
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
    participant = session.get(Participant, course.participant_id)
    audit.record(session, actor=f"staff:{signer.id}", action="dose_decision_signed",
                 entity="DoseDecision", entity_id=decision.id, site_id=participant.site_id,
                 participant_id=participant.id, at=now, reason=decision.override_reason,
                 after={"course_id": course.id, "effective_day": effective_day,
                        "dose_mg": dose_mg, "action": action, "rule": decision.rule})
    return decision


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
    return Proposal(lab=lab, grade=platelet_grade(lab.plt, cfg), current_dose_mg=current,
                    baseline_plt=baseline, suggestion=suggest_dose(current, lab.plt, baseline, cfg))


_NOTICE = {
    "zh": ("【海曲泊帕日记】研究医生调整了您的用药：从第{day}天（{date}）起{what}。请打开日记查看详情。",
           "暂停服药，不要服用药片", "每天{mg} mg（{n}片）"),
    "en": ("Hetrombopag diary: your study doctor changed your dose from day {day} ({date}): {what}. "
           "Open your diary for details.", "do not take any tablets", "take {mg} mg ({n} tablets) a day"),
}


def queue_dose_change_notice(session: Session, cipher: DataCipher, participant: Participant, course: Course,
                             decision: DoseDecision, now: datetime, cfg: StudyConfig | None = None) -> None:
    """Queue the dose-change SMS in the decision's transaction (dedupe key dose_change:{id}).

    Interim text until the messaging area's own notice (issue 5) replaces this body; the call site
    in staff/decisions.py keeps the same arguments. Never sent to an opted-out or ended participant."""
    if participant.status != "active" or not participant.sms_opt_in:
        return
    cfg = cfg or StudyConfig()
    text, hold, dose = _NOTICE["zh" if participant.language == "zh" else "en"]
    what = hold if decision.dose_mg == 0 else dose.format(mg=f"{decision.dose_mg:g}",
                                                          n=tablet_count(decision.dose_mg, cfg))
    on = date_of_day(course.start_date, decision.effective_day, cfg)
    outbox.enqueue(
        session, cipher, dedupe_key=f"dose_change:{decision.id}", kind="dose_change",
        site_id=participant.site_id, participant_id=participant.id,
        to=cipher.decrypt(participant.phone_enc),
        body=text.format(day=decision.effective_day, date=on.isoformat(), what=what),
        not_before=quiet_hours_end(now, participant.timezone, cfg),
    )
