"""Specifications of the screening checklist (diary/eligibility.py, diary/screening.toml)."""

from dataclasses import replace

import pytest

from diary import eligibility
from diary.eligibility import Measures, creatinine_clearance, evaluate, load_checklist
from diary.study import StudyConfigError, cockcroft_gault, creatinine_mg_dl, load_config, platelet_grade

CHECKLIST = load_checklist()
CFG = load_config()

# A 52-year-old woman, 60 kg, creatinine 62 µmol/L (ULN 84): CrCl = (140−52)·60/(72·0.7014)·0.85 ≈ 88.88.
GOOD = Measures(
    age_years=52, sex="female", weight_kg=60, creatinine=62, creatinine_unit="umol/L",
    creatinine_uln=84, bilirubin=12, bilirubin_uln=21, alt=30, alt_uln=40, ast=28, ast_uln=40,
    inr=1.0, inr_uln=1.2, aptt=30, aptt_uln=40, ecog=1, plt=180, liver_metastasis=False, adc_planned=True,
)


def favourable_answers():
    return {c.key: c.kind == "inclusion" for c in CHECKLIST.answered}


# --- the checklist itself -------------------------------------------------------------------------


def test_the_checklist_holds_the_registry_records_11_inclusion_and_18_exclusion_criteria():
    kinds = [c.kind for c in CHECKLIST.criteria]
    assert kinds.count("exclusion") == 18
    assert len({c.number.split(".")[0] for c in CHECKLIST.criteria if c.kind == "inclusion"}) == 11


def test_every_criterion_has_an_english_and_a_chinese_text():
    for c in CHECKLIST.criteria:
        assert c.text("en") == c.text_en and c.text("zh") == c.text_zh and c.text_zh != c.text_en


def test_a_checklist_naming_a_computation_that_does_not_exist_is_refused(tmp_path):
    bad = eligibility.DEFAULT_PATH.read_text(encoding="utf-8").replace(
        'key = "in1_age"', 'key = "in1_age_typo"')
    path = tmp_path / "screening.toml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(StudyConfigError, match="in1_age_typo"):
        load_checklist(path)


def test_a_checklist_missing_a_threshold_is_refused(tmp_path):
    text = eligibility.DEFAULT_PATH.read_text(encoding="utf-8")
    path = tmp_path / "screening.toml"
    path.write_text(text.replace("ccr_min = 55", ""), encoding="utf-8")
    with pytest.raises(StudyConfigError, match="thresholds.ccr_min: missing"):
        load_checklist(path)


# --- worked examples: Cockcroft-Gault and CTCAE --------------------------------------------------


@pytest.mark.parametrize(("age", "weight", "scr_mg_dl", "female", "expected"), [
    (60, 72, 1.0, False, 80.0),          # (140−60)·72 / (72·1.0)
    (60, 72, 1.0, True, 68.0),           # × 0.85
    (40, 50, 0.8, True, 73.78),          # (100·50)/(72·0.8)·0.85 = 73.785
    (75, 90, 2.0, False, 40.63),         # (65·90)/(144) = 40.625
])
def test_cockcroft_gault_matches_worked_examples(age, weight, scr_mg_dl, female, expected):
    assert cockcroft_gault(age, weight, scr_mg_dl, female) == pytest.approx(expected, abs=0.01)


def test_creatinine_in_micromoles_is_converted_before_cockcroft_gault():
    # 88.4 µmol/L is exactly 1 mg/dL.
    m = replace(GOOD, age_years=60, weight_kg=72, sex="male", creatinine=88.4)
    assert creatinine_mg_dl(88.4, "umol/L") == pytest.approx(1.0)
    assert creatinine_clearance(m) == pytest.approx(80.0)


@pytest.mark.parametrize(("plt", "grade"), [
    (150, 0), (100, 0), (99, 1), (75, 1), (74.9, 2), (50, 2), (49.9, 3), (25, 3), (24.9, 4), (0, 4),
])
def test_platelet_grades_follow_ctcae_v5(plt, grade):
    assert platelet_grade(plt, replace(CFG, plt_lln=100)) == grade


# --- outcomes ------------------------------------------------------------------------------------


def test_a_candidate_meeting_every_criterion_is_eligible():
    outcome = evaluate(CHECKLIST, "primary", GOOD, favourable_answers())
    assert outcome.eligible and outcome.failed == ()
    assert outcome.ccr == pytest.approx(88.88, abs=0.01)


def test_the_outcome_lists_every_failed_criterion_not_just_the_first():
    m = replace(GOOD, age_years=80, ecog=3, plt=8)
    answers = favourable_answers() | {"ex7_thrombosis": True}
    outcome = evaluate(CHECKLIST, "primary", m, answers)
    assert not outcome.eligible
    assert set(outcome.failed) == {"in1_age", "in5_ecog", "ex1_plt", "ex7_thrombosis"}


def test_unanswered_questions_and_missing_values_fail_and_say_what_is_missing():
    m = replace(GOOD, inr=None)
    answers = favourable_answers()
    del answers["in9_consent"]
    outcome = evaluate(CHECKLIST, "primary", m, answers)
    by_key = {r.criterion.key: r for r in outcome.results}
    assert set(outcome.failed) == {"in6c_inr", "in9_consent"}
    assert by_key["in6c_inr"].ok is None and by_key["in6c_inr"].missing == ("inr",)
    assert by_key["in9_consent"].missing == ("answer",)


def test_a_clearance_between_55_and_60_meets_the_inclusion_but_hits_the_exclusion():
    # 60-year-old man, 50 kg, SCr 1.0 mg/dL → (80·50)/72 = 55.6 mL/min: ≥ 55 and ≤ 60.
    m = replace(GOOD, age_years=60, sex="male", weight_kg=50, creatinine=1.0, creatinine_unit="mg/dL",
                creatinine_uln=1.1)
    outcome = evaluate(CHECKLIST, "primary", m, favourable_answers())
    by_key = {r.criterion.key: r for r in outcome.results}
    assert outcome.ccr == pytest.approx(55.56, abs=0.01)
    assert by_key["in6a_renal"].ok is True
    assert by_key["ex13_renal"].ok is False
    assert outcome.failed == ("ex13_renal",)
    # Both thresholds are shown next to the one computed value.
    assert "≥ 55" in by_key["in6a_renal"].detail and "≤ 60" in by_key["ex13_renal"].detail


def test_liver_metastasis_relaxes_the_liver_limits():
    m = replace(GOOD, bilirubin=50, bilirubin_uln=21, alt=160, alt_uln=40)  # TBIL 2.4, ALT 4×ULN
    assert {"in6b_liver", "ex12_liver"} <= set(evaluate(CHECKLIST, "primary", m, favourable_answers()).failed)
    with_mets = evaluate(CHECKLIST, "primary", replace(m, liver_metastasis=True), favourable_answers())
    assert with_mets.eligible


def test_with_liver_metastasis_five_times_uln_meets_the_inclusion_but_hits_the_exclusion():
    m = replace(GOOD, liver_metastasis=True, ast=200, ast_uln=40)  # AST exactly 5×ULN
    outcome = evaluate(CHECKLIST, "primary", m, favourable_answers())
    assert outcome.failed == ("ex12_liver",)


def test_cohort_2_needs_a_previous_nadir_below_75_and_the_same_regimen_for_two_cycles():
    base = replace(GOOD, adc_planned=None, same_regimen_two_cycles=True)
    assert evaluate(CHECKLIST, "secondary", replace(base, previous_nadir_plt=60), favourable_answers()).eligible
    at_75 = evaluate(CHECKLIST, "secondary", replace(base, previous_nadir_plt=75), favourable_answers())
    assert at_75.failed == ("in3_cohort",)
    one_cycle = replace(base, previous_nadir_plt=60, same_regimen_two_cycles=False)
    assert evaluate(CHECKLIST, "secondary", one_cycle, favourable_answers()).failed == ("in3_cohort",)


def test_cohort_1_needs_an_adc_planned():
    outcome = evaluate(CHECKLIST, "primary", replace(GOOD, adc_planned=False), favourable_answers())
    assert outcome.failed == ("in3_cohort",)


def test_age_limits_are_inclusive():
    for age in (18, 75):
        m = replace(GOOD, age_years=age)
        assert "in1_age" not in evaluate(CHECKLIST, "primary", m, favourable_answers()).failed
    assert "in1_age" in evaluate(CHECKLIST, "primary", replace(GOOD, age_years=17), favourable_answers()).failed


def test_a_screening_plt_of_10_excludes_and_11_does_not():
    assert "ex1_plt" in evaluate(CHECKLIST, "primary", replace(GOOD, plt=10), favourable_answers()).failed
    assert "ex1_plt" not in evaluate(CHECKLIST, "primary", replace(GOOD, plt=11), favourable_answers()).failed


def test_implausible_values_are_named_and_refused():
    m = replace(GOOD, weight_kg=6000, ecog=1.5, sex="x")
    assert m.errors() == {"weight_kg": "out_of_range", "ecog": "whole_number", "sex": "unknown"}
    with pytest.raises(ValueError, match="weight_kg"):
        evaluate(CHECKLIST, "primary", m, favourable_answers())


# --- issue 10: units, plausibility, APTT, decimal boundaries --------------------------------------


@pytest.mark.parametrize(("unit", "value"), [("umol/L", 1.8), ("umol/L", 1600), ("mg/dL", 62), ("mg/dL", 0.1)])
def test_each_creatinine_unit_has_its_own_plausible_range(unit, value):
    m = replace(GOOD, creatinine=value, creatinine_unit=unit, creatinine_uln=84 if unit == "umol/L" else 1.0)
    assert m.errors() == {"creatinine": "out_of_range_for_unit"}
    with pytest.raises(ValueError):
        evaluate(CHECKLIST, "primary", m, favourable_answers())


def test_a_creatinine_clearance_no_kidney_reaches_is_refused_as_a_unit_error():
    # 20 µmol/L (the lowest plausible) in a 20-year-old, 150 kg man: CrCl ≈ 1,105 mL/min.
    m = replace(GOOD, age_years=20, weight_kg=150, sex="male", creatinine=20)
    assert m.errors() == {} and creatinine_clearance(m) > 250
    assert m.clearance_error(CHECKLIST.thresholds) == {"creatinine": "implausible_clearance"}
    with pytest.raises(ValueError, match="creatinine"):
        evaluate(CHECKLIST, "primary", m, favourable_answers())


def test_the_creatinine_is_shown_converted_to_mg_dl():
    assert replace(GOOD, creatinine=88.4).creatinine_in_mg_dl() == pytest.approx(1.0)
    assert replace(GOOD, creatinine=1.2, creatinine_unit="mg/dL", creatinine_uln=1.1).creatinine_in_mg_dl() == 1.2


def test_inclusion_6_3_carries_aptt_for_the_investigator_to_confirm():
    aptt = next(c for c in CHECKLIST.criteria if c.key == "in6d_aptt")
    assert aptt.number == "6.3" and aptt.check == "computed" and "investigator confirms" in aptt.text_en
    assert evaluate(CHECKLIST, "primary", replace(GOOD, aptt=60, aptt_uln=40), favourable_answers()).eligible
    assert "in6d_aptt" in evaluate(CHECKLIST, "primary", replace(GOOD, aptt=61, aptt_uln=40),
                                   favourable_answers()).failed
    assert "in6d_aptt" in evaluate(CHECKLIST, "primary", replace(GOOD, aptt=None), favourable_answers()).failed


@pytest.mark.parametrize(("inr", "uln"), [(2.1, 1.4), (4.2, 2.8), (5.7, 3.8), (1.8, 1.2)])
def test_a_value_exactly_at_a_uln_multiple_passes_whatever_floating_point_says(inr, uln):
    # 2.1 / 1.4 is 1.5000000000000002 in binary floating point (issue 10, finding 16).
    outcome = evaluate(CHECKLIST, "primary", replace(GOOD, inr=inr, inr_uln=uln), favourable_answers())
    assert "in6c_inr" not in outcome.failed


def test_a_liver_value_exactly_at_its_limit_passes_and_just_above_fails():
    at_limit = replace(GOOD, alt=5.7, alt_uln=1.9)  # 3.0×ULN; 5.7 / 1.9 is 3.0000000000000004 in float
    assert "in6b_liver" not in evaluate(CHECKLIST, "primary", at_limit, favourable_answers()).failed
    above = replace(GOOD, alt=5.71, alt_uln=1.9)
    assert "in6b_liver" in evaluate(CHECKLIST, "primary", above, favourable_answers()).failed
