"""The one rule for a chosen reminder time (issue 11, item 7): a time in quiet hours never fires."""

from dataclasses import replace
from datetime import time

import pytest

from diary.study import StudyConfig, quiet_window, reminder_time_refusal

CFG = StudyConfig()
QUIET = quiet_window(CFG)  # quiet hours 21:30–07:00, as in study.toml


@pytest.mark.parametrize("value", ["22:00", "23:30", "21:30", "00:00", "03:15", "06:59"])
def test_a_time_inside_quiet_hours_is_refused(value):
    assert reminder_time_refusal(value, QUIET) == "quiet_hours"


@pytest.mark.parametrize("value", ["07:00", "08:00", "12:00", "21:29"])
def test_a_time_outside_quiet_hours_is_accepted(value):
    assert reminder_time_refusal(value, QUIET) is None


@pytest.mark.parametrize("value", ["7:00", "24:00", "08:60", "", "０８:００", "08:00\x00", None, 800, "08:00 "])
def test_anything_but_hh_mm_in_ascii_digits_is_invalid(value):
    assert reminder_time_refusal(value, QUIET) == "invalid"


def test_a_daytime_quiet_window_is_honoured_and_an_empty_one_refuses_nothing():
    daytime = quiet_window(replace(CFG, reminders=replace(CFG.reminders, quiet_start=time(12, 0),
                                                          quiet_end=time(14, 0))))
    assert reminder_time_refusal("13:00", daytime) == "quiet_hours"
    assert reminder_time_refusal("23:30", daytime) is None
    off = quiet_window(CFG, time(0, 0), time(0, 0))  # a site that switched them off
    assert reminder_time_refusal("23:30", off) is None


def test_a_sites_own_quiet_hours_decide_instead_of_the_studys():
    early = quiet_window(CFG, time(20, 0), time(6, 0))
    assert reminder_time_refusal("20:30", early) == "quiet_hours"
    assert reminder_time_refusal("06:30", early) is None
