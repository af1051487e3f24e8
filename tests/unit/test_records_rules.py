"""The pure rules of the audited records (diary/records.py), fed by the packaged records.toml."""

from datetime import UTC, date, datetime, timedelta

import pytest

from diary import records
from diary.records import DayRecord, load_records_config
from diary.study import StudyConfigError

pytestmark = pytest.mark.any_db
CFG = load_records_config()
D1 = date(2026, 12, 1)


def day(n, *, dose=5.0, taken=None, draw=False, result=False, paused=False):
    return DayRecord(day=n, date=D1 + timedelta(days=n - 1), dose_mg=dose, taken_at_local=taken, draw_day=draw,
                     has_result=result, paused=paused)


def at(n, hour):
    return datetime(2026, 12, n, hour, 0, tzinfo=UTC)


def test_a_difference_beyond_the_tolerance_is_a_discrepancy():
    assert records.reconcile(28, 20, [2, 2], CFG.accountability).unaccounted == 4
    assert records.reconcile(28, 20, [2, 2], CFG.accountability).discrepant
    assert not records.reconcile(28, 22, [2, 2], CFG.accountability).discrepant  # exactly the tolerance
    assert records.reconcile(28, 28, [2, 2], CFG.accountability).unaccounted == -4  # more logged than issued


def test_lot_warnings_name_expired_soon_expiring_and_wrong_strength_lots():
    kw = {"dispensed_on": D1, "last_course_date": D1 + timedelta(days=13), "study_strength_mg": 2.5}
    assert records.lot_warnings(strength_mg=2.5, expiry=D1 - timedelta(days=1), **kw) == ["expired"]
    assert records.lot_warnings(strength_mg=2.5, expiry=D1 + timedelta(days=5), **kw) == ["expires_during_course"]
    assert records.lot_warnings(strength_mg=7.5, expiry=D1 + timedelta(days=400), **kw) == ["wrong_strength"]
    assert records.lot_warnings(strength_mg=2.5, expiry=D1 + timedelta(days=400), **kw) == []


def test_danger_answers_and_critical_counts_suggest_ctcae_terms():
    rules = CFG.adverse_events
    assert records.draft_term_for_symptoms(["blood_in_urine"], rules) == "hematuria"
    assert records.draft_term_for_symptoms(["stroke_signs"], rules) == "stroke"
    assert records.draft_term_for_symptoms(["no_such_answer"], rules) == "other"
    assert records.draft_term_for_plt(rules) == "platelet_count_decreased"


def test_the_sae_clock_runs_24_hours_from_awareness():
    aware = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert records.sae_deadline(aware, CFG.adverse_events) == aware + timedelta(hours=24)
    assert records.sae_time_left(aware, aware + timedelta(hours=25), CFG.adverse_events) < timedelta(0)


@pytest.mark.parametrize(("name", "keys"), [
    ("Eltrombopag 50 mg", ["tpo_ra"]), ("特比澳 15000U", ["rhtpo"]), ("Spironolactone", []),
    ("Ferrous sulfate", ["polyvalent_cations"]), ("碳酸钙D3片", ["polyvalent_cations"]), ("Paracetamol", []),
    ("Single-donor platelets", ["platelet_transfusion"]), ("Hetrombopag", []),
])
def test_medicines_match_the_prohibited_and_restricted_list_by_name(name, keys):
    assert [r.key for r in records.conmed_matches(name, CFG.conmeds)] == keys


def test_a_window_counts_the_days_before_a_course():
    rhtpo = next(r for r in CFG.conmeds if r.key == "rhtpo")
    course = [(D1, D1 + timedelta(days=13))]
    assert records.in_window(rhtpo, D1 - timedelta(days=12), D1 - timedelta(days=9), course)
    assert not records.in_window(rhtpo, D1 - timedelta(days=30), D1 - timedelta(days=11), course)
    assert records.in_window(rhtpo, D1 + timedelta(days=3), None, course)


def test_the_rules_see_a_dose_on_a_held_day_and_a_missed_draw():
    days = [day(1, taken=at(1, 8)), day(2, dose=0, taken=at(2, 8)), day(3), day(7, draw=True),
            day(10, draw=True, result=True)]
    found = {f.key.split(":")[0]: f for f in records.course_deviations(9, 1, days, D1 + timedelta(days=9),
                                                                       CFG.deviations, 12)}
    assert set(found) == {"held_dose", "missed_draw"}
    assert found["missed_draw"].category == "missed_assessment"
    # Within the grace day the draw is not yet missed.
    assert records.course_deviations(9, 1, [day(7, draw=True)], D1 + timedelta(days=7), CFG.deviations, 12) == []


def test_a_records_file_with_an_unknown_key_is_refused(tmp_path):
    text = records.DEFAULT_RECORDS_PATH.read_text(encoding="utf-8") + "\nsurprise = 1\n"
    path = tmp_path / "records.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StudyConfigError, match="surprise: unknown key"):
        load_records_config(path)


def test_the_rules_see_a_dose_taken_during_a_review_pause():
    # Issue 12, item 4: "a dose taken on a held or paused day".
    days = [day(1, taken=at(1, 8)), day(2, taken=at(2, 8), paused=True), day(3, paused=True)]
    found = records.course_deviations(9, 1, days, D1 + timedelta(days=2), CFG.deviations, 12)
    assert [f.key for f in found] == ["paused_dose:9:2"]
    assert found[0].category == "dosing" and "review pause" in found[0].description
