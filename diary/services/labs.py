"""Blood counts entered by staff, and the dose suggestion each PLT prompts."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session, select

from diary import audit, study
from diary.models import Course, LabResult, Participant
from diary.services import review
from diary.services.flag_details import detail
from diary.services.flags import raise_flag
from diary.study import StudyConfig


class LabError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _check_values(cfg: StudyConfig, course_day: int, confirmed: bool, **values: float | None) -> None:
    """Refuse implausible counts and days outside the course, naming the field; a critically low
    PLT (0 or ≤ rules.confirm_at_or_below) is refused until the nurse confirms it."""
    for name, value in values.items():
        if value is not None:
            try:
                study.check_lab_value(name, value, cfg)
            except ValueError as exc:
                raise LabError(name, str(exc)) from None
    if not 0 <= course_day <= cfg.course_length_days:
        raise LabError("course_day", "outside the course")
    if not confirmed and study.plt_needs_confirmation(values["plt"], cfg):
        raise LabError("plt", "confirm")


def record_lab(
    session: Session,
    cfg: StudyConfig,
    *,
    course: Course,
    course_day: int,
    drawn_on: date,
    plt: float,
    staff_id: int,
    now: datetime,
    hb: float | None = None,
    anc: float | None = None,
    confirmed: bool = False,
) -> LabResult:
    """Store one blood count; implausible values are refused and nothing is written."""
    _check_values(cfg, course_day, confirmed, plt=plt, hb=hb, anc=anc)
    participant = session.get(Participant, course.participant_id)
    lab = LabResult(course_id=course.id, course_day=course_day, drawn_on=drawn_on, plt=plt,
                    hb=hb, anc=anc, entered_by=staff_id, entered_at=now)
    session.add(lab)
    session.flush()
    audit.record(session, actor=f"staff:{staff_id}", action="lab_entered", entity="LabResult",
                 entity_id=lab.id, site_id=participant.site_id, participant_id=participant.id,
                 at=now, after={"course_day": course_day, "drawn_on": drawn_on, "plt": plt,
                                "hb": hb, "anc": anc})
    _critical(session, cfg, participant, lab, now)
    return lab


def _critical(session: Session, cfg: StudyConfig, participant: Participant, lab: LabResult, now: datetime) -> None:
    """PLT at or below the critical threshold, entered or corrected: an urgent flag and a review pause."""
    if lab.plt > cfg.rules.urgent_at_or_below:
        return
    # CLINICAL-NOTES: PLT ≤ 20×10⁹/L → urgent staff flag, whatever the dose decision.
    key = f"urgent_plt:{lab.id}"
    raise_flag(session, key=key, kind="urgent_plt", site_id=participant.site_id, participant_id=participant.id,
               now=now, detail=detail("urgent_plt", plt=f"{lab.plt:g}", day=lab.course_day))
    review.open_pause(session, cfg, participant=participant, cause="critical_plt", flag_key=key, now=now)


def course_labs(session: Session, course: Course) -> list[LabResult]:
    """Current (not superseded) results of a course, in day order."""
    from diary.services.course_records import is_current

    rows = session.exec(select(LabResult).where(LabResult.course_id == course.id, is_current(LabResult))).all()
    return sorted(rows, key=lambda r: (r.course_day, r.id))


def correct_lab(
    session: Session,
    cfg: StudyConfig,
    *,
    lab: LabResult,
    course_day: int,
    drawn_on: date,
    plt: float,
    staff_id: int,
    reason: str,
    now: datetime,
    hb: float | None = None,
    anc: float | None = None,
    confirmed: bool = False,
) -> LabResult:
    """Replace a mistyped blood count: a new row superseding the old, with a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise LabError("reason", "required")
    if session.exec(select(LabResult.id).where(LabResult.supersedes_id == lab.id)).first():
        raise LabError("lab", "already corrected")
    _check_values(cfg, course_day, confirmed, plt=plt, hb=hb, anc=anc)
    participant = session.get(Participant, session.get(Course, lab.course_id).participant_id)
    corrected = LabResult(course_id=lab.course_id, course_day=course_day, drawn_on=drawn_on, plt=plt,
                          hb=hb, anc=anc, entered_by=staff_id, entered_at=now, supersedes_id=lab.id,
                          correction_reason=reason[:500])
    session.add(corrected)
    session.flush()
    audit.record(session, actor=f"staff:{staff_id}", action="lab_superseded", entity="LabResult",
                 entity_id=corrected.id, site_id=participant.site_id, participant_id=participant.id,
                 at=now, reason=corrected.correction_reason,
                 before={"id": lab.id, "course_day": lab.course_day, "drawn_on": lab.drawn_on,
                         "plt": lab.plt, "hb": lab.hb, "anc": lab.anc},
                 after={"course_day": course_day, "drawn_on": drawn_on, "plt": plt, "hb": hb, "anc": anc})
    _critical(session, cfg, participant, corrected, now)
    return corrected


def baseline_plt(labs: list[LabResult]) -> float | None:
    """The course baseline: the current day-0 count, if one was drawn."""
    baseline = [lab.plt for lab in labs if lab.course_day == 0]
    return baseline[-1] if baseline else None
