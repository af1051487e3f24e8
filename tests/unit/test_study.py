"""Specifications of the protocol rules in diary/study.py (pure functions, no app, no database)."""

import math
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diary import course_record, study
from diary.course_record import CourseRecord, LogFact
from diary.study import (
    DoseRules,
    DoseStatus,
    QuietHours,
    Reminders,
    StudyConfig,
    StudyConfigError,
    check_lab_value,
    cockcroft_gault,
    course_dates,
    course_day_on,
    creatinine_mg_dl,
    danger_symptoms,
    date_of_day,
    dose_for_day,
    in_quiet_hours,
    is_draw_day,
    load_config,
    local_date,
    local_instant,
    logging_cutoff,
    nadir,
    participant_may_log,
    platelet_grade,
    quiet_hours_end,
    quiet_window,
    suggest_dose,
    tablet_count,
)

CFG = load_config()
DEFAULT_TOML = Path(study.__file__).with_name("study.toml").read_text(encoding="utf-8")
SHANGHAI = "Asia/Shanghai"
start_dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))
plt_values = st.floats(min_value=0, max_value=1500, allow_nan=False)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def at(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))


def config_file(tmp_path: Path, old: str, new: str) -> Path:
    """The packaged configuration with one piece of text replaced, written to a temp file."""
    assert old in DEFAULT_TOML
    path = tmp_path / "study.toml"
    path.write_text(DEFAULT_TOML.replace(old, new, 1), encoding="utf-8")
    return path


# --- configuration -------------------------------------------------------------------------------


def test_the_packaged_configuration_loads_with_the_registry_schedule():
    assert (CFG.study_id, CFG.course_length_days, CFG.draw_days) == ("NCT07243418", 14, (7, 10, 14))
    assert (CFG.starting_dose_mg, CFG.dose_levels_mg, CFG.max_dose_mg) == (5, (0, 2.5, 5, 7.5), 7.5)


def test_the_packaged_configuration_matches_the_documented_defaults():
    documented = StudyConfig(symptoms=CFG.symptoms, advice_en=CFG.advice_en,
                             advice_zh=CFG.advice_zh)
    assert CFG == documented


def test_load_config_accepts_a_path_as_a_string(tmp_path):
    path = config_file(tmp_path, 'study_id = "NCT07243418"', 'study_id = "NCT07243418"')
    assert load_config(str(path)) == CFG


def test_a_draw_day_after_the_course_is_rejected(tmp_path):
    path = config_file(tmp_path, "draw_days = [7, 10, 14]", "draw_days = [7, 10, 15]")
    with pytest.raises(StudyConfigError, match="draw_days"):
        load_config(path)


def test_a_starting_dose_that_is_not_a_dose_level_is_rejected(tmp_path):
    path = config_file(tmp_path, "starting_dose_mg = 5.0", "starting_dose_mg = 10.0")
    with pytest.raises(StudyConfigError, match="starting_dose_mg"):
        load_config(path)


def test_a_dose_level_that_is_not_whole_tablets_is_rejected(tmp_path):
    path = config_file(tmp_path, "dose_levels_mg = [0, 2.5, 5, 7.5]",
                       "dose_levels_mg = [0, 2.5, 5, 6, 7.5]")
    with pytest.raises(StudyConfigError, match="dose_levels_mg: 6 mg"):
        load_config(path)


def test_duplicate_symptom_keys_are_rejected(tmp_path):
    path = config_file(tmp_path, 'key = "nosebleed_persistent"', 'key = "nosebleed"')
    with pytest.raises(StudyConfigError, match="symptoms: duplicate.*nosebleed"):
        load_config(path)


def test_a_time_that_does_not_parse_is_rejected(tmp_path):
    path = config_file(tmp_path, 'cutoff_time = "12:00"', 'cutoff_time = "noon"')
    with pytest.raises(StudyConfigError, match="cutoff_time"):
        load_config(path)


def test_a_missing_key_is_rejected_rather_than_taken_from_code(tmp_path):
    path = config_file(tmp_path, "undo_minutes = 5", "")
    with pytest.raises(StudyConfigError, match="undo_minutes: missing"):
        load_config(path)


def test_an_unknown_key_is_rejected(tmp_path):
    path = config_file(tmp_path, "[rules]\n", "[rules]\nhold_at_or_abve = 100\n")
    with pytest.raises(StudyConfigError, match="rules.hold_at_or_abve: unknown key"):
        load_config(path)


def test_an_unknown_time_zone_is_rejected(tmp_path):
    path = config_file(tmp_path, '"Asia/Shanghai"', '"Asia/Peking"')
    with pytest.raises(StudyConfigError, match="default_timezone"):
        load_config(path)


def test_a_file_that_is_not_toml_is_rejected(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text("draw_days = [7, 10,", encoding="utf-8")
    with pytest.raises(StudyConfigError, match="study.toml"):
        load_config(path)


def test_a_configuration_error_is_a_value_error():
    with pytest.raises(ValueError, match="course_length_days"):
        StudyConfig(course_length_days=0)


def test_times_may_be_toml_local_times(tmp_path):
    path = config_file(tmp_path, 'cutoff_time = "12:00"', "cutoff_time = 12:00:00")
    assert load_config(path).cutoff_time == time(12, 0)


# --- symptoms and advice -------------------------------------------------------------------------

DANGER_KEYS = {
    "nosebleed_persistent", "blood_in_urine", "black_or_bloody_stool", "vomiting_blood",
    "coughing_blood", "heavy_vaginal_bleeding", "severe_headache_confusion", "leg_swelling",
    "chest_pain_breathless", "stroke_signs", "liver_signs", "arm_neck_line_clot",
}
ROUTINE_KEYS = {"bruising", "petechiae", "gum_bleeding", "nosebleed", "other_bleeding"}


def test_the_checklist_has_the_agreed_symptom_keys():
    assert {s.key for s in CFG.symptoms} == DANGER_KEYS | ROUTINE_KEYS


def test_danger_flags_follow_the_clinical_notes():
    assert {s.key for s in CFG.symptoms if s.danger} == DANGER_KEYS


def test_thrombosis_signs_are_grouped_as_thrombosis():
    thrombosis = {s.key for s in CFG.symptoms if s.group == "thrombosis"}
    assert thrombosis == {"leg_swelling", "chest_pain_breathless", "stroke_signs", "arm_neck_line_clot"}


def test_danger_symptoms_returns_only_the_danger_answers_in_checklist_order():
    found = danger_symptoms(["bruising", "stroke_signs", "vomiting_blood"], CFG)
    assert [s.key for s in found] == ["vomiting_blood", "stroke_signs"]


def test_danger_symptoms_rejects_an_unknown_key():
    with pytest.raises(ValueError, match="headache"):
        danger_symptoms(["headache"], CFG)


def test_symptom_lookup_raises_key_error_for_an_unknown_key():
    with pytest.raises(KeyError):
        CFG.symptom("headache")


def test_symptom_labels_come_in_chinese_and_english():
    nosebleed = CFG.symptom("nosebleed_persistent")
    assert "15–20 minutes" in nosebleed.label("en")
    assert nosebleed.label("zh") == nosebleed.label_zh != nosebleed.label_en


def test_every_advice_line_has_a_chinese_translation():
    assert CFG.advice("zh") == (*CFG.advice_zh, CFG.missed_dose_rule_zh)
    assert len(CFG.advice("en")) == len(CFG.advice("zh")) >= 3


def test_advice_ends_with_the_configured_missed_dose_rule():
    # Issue 10, finding 2: the protocol's rule (default: skip, never double) is one configured value.
    assert CFG.advice("en")[-1] == CFG.missed_dose_rule("en") == \
        "If you missed a dose, skip it and never take two doses in one day."
    assert CFG.advice("zh-CN")[-1] == "如果漏服了，请跳过这一次，一天内切勿服用两次海曲泊帕。"
    assert CFG.min_hours_between_doses == 12


def test_two_doses_less_than_the_configured_gap_apart_are_too_close_in_either_order():
    first = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert study.too_close(first, first + timedelta(hours=11, minutes=59), 12) == pytest.approx(11 + 59 / 60)
    assert study.too_close(first + timedelta(hours=3), first, 12) == 3
    assert study.too_close(first, first + timedelta(hours=12), 12) is None


# --- course calendar -----------------------------------------------------------------------------


def test_a_course_that_starts_in_late_december_ends_in_january():
    dates = course_dates(date(2025, 12, 25), CFG)
    assert dates[0] == date(2025, 12, 25)
    assert dates[-1] == date(2026, 1, 7)


def test_a_course_runs_through_a_leap_day():
    dates = course_dates(date(2028, 2, 21), CFG)
    assert date(2028, 2, 29) in dates
    assert dates[-1] == date(2028, 3, 5)


def test_a_course_runs_across_a_month_end():
    assert date_of_day(date(2026, 4, 30), 2, CFG) == date(2026, 5, 1)


@given(start_dates)
def test_a_course_is_fourteen_consecutive_dates_from_day_1(start):
    dates = course_dates(start, CFG)
    assert len(dates) == 14
    assert dates[0] == start
    gaps = {later - earlier for earlier, later in zip(dates, dates[1:], strict=False)}
    assert gaps == {timedelta(days=1)}


@given(start_dates, st.integers(min_value=1, max_value=14))
def test_course_day_and_date_are_inverse(start, day):
    assert course_day_on(start, date_of_day(start, day, CFG), CFG) == day


@given(start_dates, st.integers(min_value=-400, max_value=400))
def test_dates_outside_the_course_have_no_course_day(start, offset):
    day = course_day_on(start, start + timedelta(days=offset), CFG)
    assert day == (offset + 1 if 0 <= offset <= 13 else None)


@pytest.mark.parametrize("day", [0, 15, -1])
def test_date_of_day_rejects_days_outside_the_course(day):
    with pytest.raises(ValueError):
        date_of_day(date(2026, 3, 1), day, CFG)


def test_blood_is_drawn_on_days_7_10_and_14():
    assert [day for day in range(1, 15) if is_draw_day(day, CFG)] == [7, 10, 14]


# --- local time ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("instant", "tz", "expected"), [
    (utc(2026, 3, 7, 16, 30), "Asia/Shanghai", date(2026, 3, 8)),
    (utc(2026, 3, 7, 16, 30), "UTC", date(2026, 3, 7)),
    (utc(2026, 3, 7, 16, 30), "America/New_York", date(2026, 3, 7)),
    (utc(2026, 3, 7, 11, 30), "Pacific/Auckland", date(2026, 3, 8)),
    # New York: 23:30 EST the evening before spring-forward, 23:30 EDT on that day.
    (utc(2026, 3, 8, 4, 30), "America/New_York", date(2026, 3, 7)),
    (utc(2026, 3, 9, 3, 30), "America/New_York", date(2026, 3, 8)),
    # Fall-back day: 04:30 UTC is 23:30 EST on 1 November, not 00:30 EDT on the 2nd.
    (utc(2026, 11, 2, 4, 30), "America/New_York", date(2026, 11, 1)),
])
def test_local_date_is_the_calendar_date_in_the_participants_zone(instant, tz, expected):
    assert local_date(instant, tz) == expected


def test_local_date_rejects_a_naive_datetime():
    with pytest.raises(ValueError, match="naive"):
        local_date(datetime(2026, 3, 8, 12, 0), SHANGHAI)  # noqa: DTZ001 - naive on purpose


def test_a_wall_time_in_the_spring_forward_gap_is_shifted_forward():
    # 02:30 does not exist in New York on 8 March 2026; it becomes 03:30 EDT.
    instant = local_instant(date(2026, 3, 8), time(2, 30), "America/New_York")
    assert instant == utc(2026, 3, 8, 7, 30)


def test_an_ambiguous_wall_time_is_its_first_occurrence():
    # 01:30 happens twice in New York on 1 November 2026; the first is EDT (UTC-4).
    instant = local_instant(date(2026, 11, 1), time(1, 30), "America/New_York")
    assert instant == utc(2026, 11, 1, 5, 30)


@given(start_dates, st.times(), st.sampled_from(
    ["Asia/Shanghai", "America/New_York", "Pacific/Auckland", "UTC"]))
def test_a_local_wall_time_falls_on_its_own_local_date(day, wall, tz):
    instant = local_instant(day, wall, tz)
    assert instant.tzinfo is UTC
    assert local_date(instant, tz) == day


def test_the_logging_cutoff_is_noon_of_the_next_local_day():
    # Day 1 is 2 March; noon on 3 March in Shanghai is 04:00 UTC.
    assert logging_cutoff(date(2026, 3, 2), 1, SHANGHAI, CFG) == utc(2026, 3, 3, 4, 0)


def test_the_logging_cutoff_follows_daylight_saving_time():
    # Day 6 is 7 March; the cutoff is noon EDT on 8 March, the day clocks go forward.
    assert logging_cutoff(date(2026, 3, 2), 6, "America/New_York", CFG) == utc(2026, 3, 8, 16, 0)


# --- dose days -----------------------------------------------------------------------------------

DAY3 = date(2026, 3, 4)  # day 3 of a course whose day 1 is 2 March
CUTOFF3 = logging_cutoff(date(2026, 3, 2), 3, SHANGHAI, CFG)  # 5 March 12:00 +08:00


def dose_status(day_date: date, dose_mg: float, outcome: str | None, now: datetime, tz: str) -> DoseStatus:
    """One day's status, read from a course record whose only day that matters is `day_date`."""
    day1 = day_date - timedelta(days=2)
    logs = {3: LogFact(id=1, day=3, outcome=outcome)} if outcome is not None else None
    record = CourseRecord(course_id=1, participant_id=1, site_id=1, cycle=1, day1=day1, starting_dose_mg=5.0, tz=tz,
                          decisions=((3, dose_mg), (4, 5.0)), logs=logs)
    return course_record.day_statuses(record, CFG, now)[2]


def status(now: datetime, dose_mg: float = 5, outcome: str | None = None) -> DoseStatus:
    return dose_status(DAY3, dose_mg, outcome, now, SHANGHAI)


def test_a_dose_is_upcoming_until_its_local_day_begins():
    assert status(at(SHANGHAI, 2026, 3, 3, 23, 59)) is DoseStatus.UPCOMING


def test_a_dose_is_due_from_local_midnight_of_its_day():
    assert status(at(SHANGHAI, 2026, 3, 4, 0, 0)) is DoseStatus.DUE


def test_a_dose_is_still_due_the_next_morning_before_the_cutoff():
    assert status(CUTOFF3 - timedelta(microseconds=1)) is DoseStatus.DUE


def test_a_dose_is_missed_at_the_cutoff_instant():
    assert status(CUTOFF3) is DoseStatus.MISSED


def test_a_taken_dose_stays_taken_after_the_cutoff():
    assert status(CUTOFF3 + timedelta(days=3), outcome="taken") is DoseStatus.TAKEN


def test_a_dose_the_participant_skipped_is_not_taken_rather_than_missed():
    assert status(CUTOFF3 + timedelta(days=3), outcome="not_taken") is DoseStatus.NOT_TAKEN


def test_an_undone_log_leaves_the_dose_due_again():
    assert status(at(SHANGHAI, 2026, 3, 4, 9, 0), outcome=None) is DoseStatus.DUE


def test_a_held_day_is_never_missed():
    assert status(CUTOFF3 + timedelta(days=3), dose_mg=0) is DoseStatus.HELD


def test_a_hold_overrides_a_logged_dose():
    assert status(at(SHANGHAI, 2026, 3, 4, 9, 0), dose_mg=0, outcome="taken") is DoseStatus.HELD


def test_dose_status_rejects_an_unknown_outcome():
    with pytest.raises(ValueError, match="outcome"):
        status(at(SHANGHAI, 2026, 3, 4, 9, 0), outcome="maybe")


def test_dose_status_uses_the_participants_local_date():
    # 20:00 UTC on 3 March is already 4 March in Shanghai.
    assert status(utc(2026, 3, 3, 20, 0)) is DoseStatus.DUE


@pytest.mark.parametrize(("now", "allowed"), [
    (at(SHANGHAI, 2026, 3, 3, 23, 59), False),
    (at(SHANGHAI, 2026, 3, 4, 0, 0), True),
    (at(SHANGHAI, 2026, 3, 5, 11, 59), True),
    (at(SHANGHAI, 2026, 3, 5, 12, 0), False),
])
def test_the_participant_may_log_from_the_day_until_the_cutoff(now, allowed):
    assert participant_may_log(DAY3, now, SHANGHAI, CUTOFF3) is allowed


def test_without_decisions_every_day_gets_the_starting_dose():
    assert {dose_for_day(day, 5, []) for day in range(1, 15)} == {5}


def test_a_decision_applies_from_its_effective_day():
    decisions = [(8, 7.5)]
    assert [dose_for_day(day, 5, decisions) for day in (7, 8, 14)] == [5, 7.5, 7.5]


def test_a_later_signed_decision_overrides_an_earlier_one_for_the_same_day():
    assert dose_for_day(8, 5, [(8, 7.5), (8, 5)]) == 5


def test_the_last_signed_decision_in_effect_wins_even_with_an_earlier_effective_day():
    # A hold from day 10 was signed, then replaced by a correction effective day 8.
    assert dose_for_day(12, 5, [(10, 0), (8, 7.5)]) == 7.5


@pytest.mark.parametrize(("dose_mg", "tablets"), [(0, 0), (2.5, 1), (5, 2), (7.5, 3), (15, 6)])
def test_tablet_count_is_dose_over_tablet_strength(dose_mg, tablets):
    assert tablet_count(dose_mg, CFG) == tablets


@pytest.mark.parametrize("dose_mg", [3, 1.25, -2.5, math.nan])
def test_tablet_count_rejects_a_dose_that_is_not_whole_tablets(dose_mg):
    with pytest.raises(ValueError):
        tablet_count(dose_mg, CFG)


# --- blood counts --------------------------------------------------------------------------------


@pytest.mark.parametrize(("plt", "grade"), [
    (100, 0), (99.9, 1), (75, 1), (74.9, 2), (50, 2), (49.9, 3), (25, 3), (24.9, 4), (0, 4),
])
def test_platelet_grade_follows_ctcae_v5_boundaries(plt, grade):
    # An LLN of 100 (the default before issue 10) puts the grade 0/1 boundary at 100.
    assert platelet_grade(plt, replace(CFG, plt_lln=100)) == grade


def test_the_default_lower_limit_of_normal_is_the_chinese_reference_125():
    # WS/T 405-2012: adult PLT reference interval 125–350×10⁹/L (issue 10, finding 14).
    assert CFG.plt_lln == 125
    assert (platelet_grade(124.9, CFG), platelet_grade(125, CFG)) == (1, 0)


def test_a_site_lower_limit_of_normal_overrides_the_study_default():
    assert platelet_grade(110, CFG, lln=100) == 0 and platelet_grade(110, CFG) == 1
    assert nadir([110, 130], CFG, lln=100) == (110, 0)


@given(plt_values, plt_values)
def test_platelet_grade_never_rises_as_the_count_rises(low, high):
    low, high = sorted((low, high))
    assert platelet_grade(low, CFG) >= platelet_grade(high, CFG)


def test_grade_1_starts_below_the_configured_lower_limit_of_normal():
    assert platelet_grade(140, replace(CFG, plt_lln=150)) == 1


@pytest.mark.parametrize("plt", [-1, 1501, math.nan, math.inf])
def test_platelet_grade_rejects_an_implausible_count(plt):
    with pytest.raises(ValueError):
        platelet_grade(plt, CFG)


def test_the_nadir_is_the_lowest_count_with_its_grade():
    assert nadir([120, 48, 63], CFG) == (48, 3)


def test_there_is_no_nadir_without_counts():
    assert nadir([], CFG) is None


@pytest.mark.parametrize(("name", "value"), [
    ("hb", 19), ("hb", 251), ("anc", math.nan), ("plt", math.inf), ("plt", -0.1),
])
def test_an_implausible_lab_value_is_rejected_with_its_name(name, value):
    with pytest.raises(ValueError, match=name.upper()):
        check_lab_value(name, value, CFG)


@pytest.mark.parametrize(("name", "value"), [("plt", 0), ("plt", 1500), ("hb", 120), ("anc", 1.5)])
def test_a_plausible_lab_value_is_accepted(name, value):
    check_lab_value(name, value, CFG)


def test_an_unknown_lab_is_rejected():
    with pytest.raises(ValueError, match="unknown lab"):
        check_lab_value("wbc", 5, CFG)


# --- dose suggestions ----------------------------------------------------------------------------


def test_plt_at_100_suggests_a_hold_for_the_rest_of_the_course():
    suggestion = suggest_dose(5, 100, None, CFG)
    assert (suggestion.action, suggestion.dose_mg, suggestion.urgent) == ("hold", 0, False)
    assert suggestion.rule.startswith("R1:") and "rest of the course" in suggestion.rule


def test_plt_just_below_100_suggests_continuing():
    assert suggest_dose(5, 99.9, None, CFG).action == "continue"


def test_a_rise_of_50_above_the_course_baseline_suggests_a_hold():
    suggestion = suggest_dose(5, 80, 30, CFG)
    assert (suggestion.action, suggestion.dose_mg) == ("hold", 0)
    assert suggestion.rule.startswith("R2:")


def test_a_rise_just_under_50_above_baseline_does_not_hold():
    assert suggest_dose(5, 79.9, 30, CFG).action == "continue"


def test_plt_below_50_suggests_one_step_up():
    suggestion = suggest_dose(5, 49.9, None, CFG)
    assert (suggestion.action, suggestion.dose_mg) == ("increase", 7.5)
    assert suggestion.rule.startswith("R3:")


def test_plt_at_50_suggests_continuing_at_the_current_dose():
    suggestion = suggest_dose(5, 50, None, CFG)
    assert (suggestion.action, suggestion.dose_mg) == ("continue", 5)


def test_an_increase_is_capped_at_the_maximum_dose():
    suggestion = suggest_dose(7.5, 30, None, CFG)
    assert (suggestion.action, suggestion.dose_mg) == ("continue", 7.5)
    assert "maximum" in suggestion.rule


def test_a_configured_15_mg_maximum_allows_a_further_step():
    titrating = replace(CFG, dose_levels_mg=(0, 2.5, 5, 7.5, 10, 12.5, 15), max_dose_mg=15)
    assert suggest_dose(7.5, 30, None, titrating).dose_mg == 10


def test_a_held_participant_whose_plt_falls_resumes_at_the_starting_dose():
    suggestion = suggest_dose(0, 60, 40, CFG)
    assert (suggestion.action, suggestion.dose_mg) == ("resume", 5)
    assert suggestion.rule.startswith("R4:")


def test_a_held_participant_with_plt_still_at_100_stays_held():
    assert (suggest_dose(0, 120, None, CFG).action, suggest_dose(0, 120, None, CFG).dose_mg) == (
        "hold", 0)


def test_plt_at_20_is_urgent_whatever_the_dose_decision():
    suggestion = suggest_dose(5, 20, None, CFG)
    assert suggestion.urgent and suggestion.action == "increase"


def test_plt_just_above_20_is_not_urgent():
    assert not suggest_dose(5, 20.1, None, CFG).urgent


def test_an_urgent_count_while_held_is_still_flagged():
    suggestion = suggest_dose(0, 8, None, CFG)
    assert (suggestion.action, suggestion.urgent) == ("resume", True)


def test_suggest_dose_rejects_an_implausible_count():
    with pytest.raises(ValueError):
        suggest_dose(5, math.nan, None, CFG)


def test_dose_rules_must_be_ordered():
    with pytest.raises(StudyConfigError, match="rules"):
        DoseRules(increase_below=120)


# --- quiet hours ---------------------------------------------------------------------------------

QUIET = quiet_window(CFG)  # the study's: 21:30–07:00


@pytest.mark.parametrize(("hour", "minute", "quiet"), [
    (21, 29, False), (21, 30, True), (23, 59, True), (0, 0, True), (6, 59, True), (7, 0, False),
    (12, 0, False),
])
def test_quiet_hours_cross_midnight(hour, minute, quiet):
    assert in_quiet_hours(at(SHANGHAI, 2026, 3, 4, hour, minute), SHANGHAI, QUIET) is quiet


def test_quiet_hours_are_judged_in_the_participants_zone():
    # 14:00 UTC is 22:00 in Shanghai but 10:00 in New York.
    assert in_quiet_hours(utc(2026, 3, 4, 14, 0), SHANGHAI, QUIET)
    assert not in_quiet_hours(utc(2026, 3, 4, 14, 0), "America/New_York", QUIET)


def test_quiet_hours_before_midnight_end_the_next_morning():
    end = quiet_hours_end(at(SHANGHAI, 2026, 3, 4, 23, 0), SHANGHAI, QUIET)
    assert end == at(SHANGHAI, 2026, 3, 5, 7, 0)
    assert end.tzinfo is UTC


def test_quiet_hours_after_midnight_end_the_same_morning():
    assert quiet_hours_end(at(SHANGHAI, 2026, 3, 5, 3, 0), SHANGHAI, QUIET) == at(
        SHANGHAI, 2026, 3, 5, 7, 0)


def test_outside_quiet_hours_the_end_is_the_instant_itself():
    noon = at(SHANGHAI, 2026, 3, 5, 12, 0)
    assert quiet_hours_end(noon, SHANGHAI, QUIET) == noon


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1),
                    timezones=st.just(UTC)),
       st.sampled_from(["Asia/Shanghai", "America/New_York", "Pacific/Auckland", "UTC"]))
def test_a_message_held_for_quiet_hours_is_released_outside_them(instant, tz):
    end = quiet_hours_end(instant, tz, QUIET)
    # The window is 9.5 h of wall time; the night summer time ends it lasts an hour longer
    # (hypothesis found Pacific/Auckland, 2048-04-04 21:30 NZDT → 07:00 NZST, 10.5 h).
    assert instant <= end <= instant + timedelta(hours=10, minutes=30)
    assert not in_quiet_hours(end, tz, QUIET)


def test_a_quiet_window_within_one_day_is_supported():
    siesta = quiet_window(replace(CFG, reminders=Reminders(quiet_start=time(13, 0), quiet_end=time(15, 0))))
    assert in_quiet_hours(at(SHANGHAI, 2026, 3, 5, 14, 0), SHANGHAI, siesta)
    assert not in_quiet_hours(at(SHANGHAI, 2026, 3, 5, 23, 0), SHANGHAI, siesta)
    assert quiet_hours_end(at(SHANGHAI, 2026, 3, 5, 14, 0), SHANGHAI, siesta) == at(
        SHANGHAI, 2026, 3, 5, 15, 0)


def test_equal_quiet_start_and_end_switch_quiet_hours_off():
    never = quiet_window(replace(CFG, reminders=Reminders(quiet_start=time(7, 0), quiet_end=time(7, 0))))
    assert not in_quiet_hours(at(SHANGHAI, 2026, 3, 5, 3, 0), SHANGHAI, never)


def test_a_site_that_sets_both_ends_has_its_own_quiet_hours():
    assert quiet_window(CFG, time(20, 0), time(8, 0)) == QuietHours(time(20, 0), time(8, 0))
    assert in_quiet_hours(at(SHANGHAI, 2026, 3, 5, 20, 30), SHANGHAI, quiet_window(CFG, time(20, 0), time(8, 0)))


def test_a_site_without_both_ends_takes_the_study_quiet_hours():
    assert quiet_window(CFG, None, None) == QuietHours(time(21, 30), time(7, 0))
    assert quiet_window(CFG, time(20, 0), None) == QuietHours(time(21, 30), time(7, 0))


# --- screening formulae --------------------------------------------------------------------------


def test_cockcroft_gault_worked_example_for_a_woman():
    # (140 − 60) × 60 / (72 × 1.0) × 0.85 = 56.67 mL/min
    assert cockcroft_gault(60, 60, 1.0, female=True) == pytest.approx(56.67, abs=0.01)


def test_cockcroft_gault_applies_no_factor_for_a_man():
    assert cockcroft_gault(60, 60, 1.0, female=False) == pytest.approx(66.67, abs=0.01)


def test_cockcroft_gault_rejects_a_zero_creatinine():
    with pytest.raises(ValueError):
        cockcroft_gault(60, 60, 0, female=True)


def test_88_4_umol_per_litre_is_1_mg_per_decilitre():
    assert creatinine_mg_dl(88.4, "umol/L") == pytest.approx(1.0)


def test_creatinine_in_mg_per_decilitre_is_unchanged():
    assert creatinine_mg_dl(1.2, "mg/dL") == 1.2


def test_an_unknown_creatinine_unit_is_rejected():
    with pytest.raises(ValueError, match="unit"):
        creatinine_mg_dl(1.2, "mmol/L")


@given(start=st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31)),
       hours=st.integers(min_value=-48, max_value=24 * 20),
       decisions=st.lists(st.tuples(st.integers(1, 14), st.sampled_from([0, 2.5, 5, 7.5])), max_size=3),
       outcomes=st.dictionaries(st.integers(1, 14), st.sampled_from(["taken", "not_taken"]), max_size=6),
       tz=st.sampled_from([SHANGHAI, "Europe/Berlin", "America/New_York"]))
def test_course_statuses_agree_with_dose_status_day_by_day(start, hours, decisions, outcomes, tz):
    """The course-at-once statuses equal DESIGN §3 applied day by day with each day's exact cutoff."""
    now = local_instant(start, time(0, 0), tz) + timedelta(hours=hours, minutes=17)
    expected = []
    for day, day_date in enumerate(course_dates(start, CFG), start=1):
        dose = dose_for_day(day, 5.0, decisions)
        cutoff = logging_cutoff(start, day, tz, CFG)
        outcome = outcomes.get(day)
        expected.append(DoseStatus.HELD if dose == 0 else
                        DoseStatus(outcome) if outcome else
                        DoseStatus.UPCOMING if local_date(now, tz) < day_date else
                        DoseStatus.MISSED if now >= cutoff else DoseStatus.DUE)
    record = CourseRecord(course_id=1, participant_id=1, site_id=1, cycle=1, day1=start, starting_dose_mg=5.0, tz=tz,
                          decisions=tuple(decisions),
                          logs={d: LogFact(id=d, day=d, outcome=o) for d, o in outcomes.items()})
    assert course_record.day_statuses(record, CFG, now) == expected


# --- symptom checklist (issue 10, findings 4 and 5) ----------------------------------------------


def test_stroke_chest_pain_and_breathing_signs_send_the_participant_to_the_emergency_number_first():
    first = {s.key for s in CFG.symptoms if s.emergency_first}
    assert {"stroke_signs", "chest_pain_breathless"} <= first
    assert all(CFG.symptom(key).danger for key in first)


def test_the_checklist_asks_about_liver_signs_and_arm_neck_or_line_clots():
    liver, line = CFG.symptom("liver_signs"), CFG.symptom("arm_neck_line_clot")
    assert liver.danger and line.danger and liver.group == "liver" and line.group == "thrombosis"
    assert "yellow" in liver.label_en.lower() and "dark urine" in liver.label_en
    assert "PICC" in line.label_en and "PICC" in line.label_zh


def test_the_leg_clot_item_says_warm_to_the_touch_not_fever_in_chinese():
    label = CFG.symptom("leg_swelling").label_zh
    assert "发烫" in label and "发热" not in label


def test_only_a_danger_answer_may_send_to_the_emergency_number(tmp_path):
    path = config_file(tmp_path, 'label_zh = "身上出现瘀青（青紫）"\nemergency_first = false',
                       'label_zh = "身上出现瘀青（青紫）"\nemergency_first = true')
    with pytest.raises(StudyConfigError, match="emergency_first"):
        load_config(path)


def test_the_advice_names_soy_milk_and_calcium_tablets_and_says_how_long_to_wait():
    # Issue 10, wording: participants do not count soy milk or calcium tablets as "dairy" or "supplements".
    zh, en = " ".join(CFG.advice("zh")), " ".join(CFG.advice("en"))
    assert "豆浆" in zh and "钙片" in zh and "soy milk" in en and "calcium tablets" in en
    assert "2 hours before you eat" in en and "2小时" in zh
    assert "will tell you how long" not in en and "请听从研究团队的安排" not in zh
