"""The staff report: one row per participant with adherence, last PLT and nadir, open flags, open
deviations and unreported SAEs. Adherence, PLT and flags come from the adherence grid (the one place
they are derived); deviations and SAEs from their own services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from diary.models import Participant, ProtocolDeviation
from diary.records import RecordsConfig
from diary.services import adherence, adverse_events, deviations
from diary.study import StudyConfig

SORT_KEYS = ("study_number", "site", "adherence", "last_plt", "nadir", "open_flags", "open_deviations",
             "open_saes")


@dataclass
class ReportRow:
    participant_id: int
    study_number: str
    site: str
    cohort: str
    status: str
    taken: int = 0
    counted: int = 0
    last_plt: float | None = None
    nadir: float | None = None
    nadir_grade: int | None = None
    open_flags: int = 0
    open_deviations: int = 0
    open_saes: int = 0

    @property
    def adherence(self) -> float | None:
        return round(100 * self.taken / self.counted, 1) if self.counted else None


def participant_report(session: Session, cfg: StudyConfig, rcfg: RecordsConfig, now: datetime,
                       site_ids: frozenset[int] | None) -> list[ReportRow]:
    rows: dict[int, ReportRow] = {}
    latest_cycle: dict[int, int] = {}
    for course in adherence.build_grid(session, cfg, now, site_ids).rows:
        row = rows.setdefault(course.participant_id, ReportRow(
            course.participant_id, course.study_number, course.site_code, course.cohort,
            course.record.participant_status, open_flags=course.open_flags))
        row.taken += course.rate.taken
        row.counted += course.rate.counted
        labs = course.record.labs
        if labs and course.cycle_number >= latest_cycle.get(course.participant_id, 0):
            # The latest course with a blood count gives the last PLT and the current nadir.
            latest_cycle[course.participant_id] = course.cycle_number
            row.last_plt = max(labs, key=lambda lab: (lab.day, lab.id)).plt  # the highest course day
            row.nadir, row.nadir_grade = course.nadir or (None, None)
    query = select(ProtocolDeviation).join(Participant, Participant.id == ProtocolDeviation.participant_id)
    if site_ids is not None:
        query = query.where(Participant.site_id.in_(sorted(site_ids)))
    for dev in deviations.current(list(session.exec(query).all())):
        if dev.status in ("proposed", "confirmed") and dev.participant_id in rows:
            rows[dev.participant_id].open_deviations += 1
    for clock in adverse_events.open_sae_clocks(session, rcfg, site_ids, now):
        if clock.ae.participant_id in rows:
            rows[clock.ae.participant_id].open_saes += 1
    return list(rows.values())


def sort_rows(rows: list[ReportRow], key: str, descending: bool) -> list[ReportRow]:
    """Sorted by `key`; empty values last whichever the direction."""
    if key not in SORT_KEYS:
        key = "study_number"
    present = [r for r in rows if getattr(r, key) is not None]
    missing = [r for r in rows if getattr(r, key) is None]
    return sorted(present, key=lambda r: (getattr(r, key), r.study_number), reverse=descending) + missing
