"""Shared set-up for the staff tests: clinical rows at site A, built through the app's services."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from diary.eligibility import Measures, load_checklist
from diary.services import labs, screening, symptoms
from diary.services.flags import raise_flag

ELIGIBLE = Measures(
    age_years=52, sex="female", weight_kg=60, creatinine=62, creatinine_unit="umol/L", creatinine_uln=84,
    bilirubin=12, bilirubin_uln=21, alt=30, alt_uln=40, ast=28, ast_uln=40, inr=1.0, inr_uln=1.2,
    aptt=30, aptt_uln=40, ecog=1, plt=180, liver_metastasis=False, adc_planned=True)


def favourable_answers() -> dict[str, bool]:
    return {c.key: c.kind == "inclusion" for c in load_checklist().answered}


@dataclass
class SiteARows:
    course_id: int
    lab_id: int
    flag_id: int
    screening_id: int
    report_id: int


def site_a_rows(app, session, world, clock) -> SiteARows:
    cfg = app.extensions["diary.study"]
    pa, course = world.participants["pa"], world.courses["pa"]
    lab = labs.record_lab(session, cfg, course=course, course_day=3, drawn_on=clock.now.date(), plt=60,
                          staff_id=world.staff["nurse_a"].id, now=clock.now)
    flag = raise_flag(session, key="test:pa", kind="missed_dose", site_id=pa.site_id, participant_id=pa.id,
                      detail="Day 2 not logged", now=clock.now)
    sc = screening.sign_screening(
        session, load_checklist(), site_id=world.sites["A"].id, screening_number="S-A-1", cohort="primary",
        screened_on=clock.now.date(), measures=ELIGIBLE, answers=favourable_answers(),
        signer=world.staff["nurse_a"], now=clock.now)
    report = symptoms.report_symptoms(
        session, cfg, participant=pa, symptoms=[{"key": "bruising", "severity": "mild"}], noticed_at=clock.now,
        client_key="sym-1", source="participant", now=clock.now, course_id=course.id)
    session.commit()
    return SiteARows(course.id, lab.id, flag.id, sc.id, report.id)


@pytest.fixture
def english(client):
    """Staff pages in English: the staff locale follows the browser, and assertions read English."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client
