"""Participant-facing words for codes the services return (one place for each sentence)."""

from flask_babel import lazy_gettext as _l

_TRY_AGAIN = _l("Something went wrong. Please try again.")

DOSE_ERRORS = {
    "outside_window": _l("This day can no longer be changed in the diary. Please call your study nurse."),
    "held": _l("No tablets were planned for this day: your study doctor paused the medicine."),
    "nothing_to_undo": _l("There is nothing to undo."),
    "undo_expired": _l("It is too late to undo this. If it is wrong, please call your study nurse."),
    "time_in_future": _l("That time has not come yet. Please enter the time you took the tablets."),
    "time_before_day": _l("That time is before this day began. Please check the day and the time."),
    "bad_time": _l("Please enter the time as hours and minutes, for example 07:30."),
    "reason_required": _l("Please choose a reason."),
    "bad_fasting": _l("Please answer the empty-stomach question with yes, no or not sure."),
}

SYMPTOM_ERRORS = {
    "nothing_chosen": _l("Please tick at least one symptom."),
    "severity_required": _l("Please say how bad each ticked symptom is."),
}

SETTINGS_ERRORS = {
    "reminder_time": _l("Please enter a time as hours and minutes, for example 08:00."),
    "language": _l("Please choose a language."),
}


def settings_error(error) -> str:
    """The sentence for a refused setting (a SettingsError); a reminder time in quiet hours names
    the participant's site's window."""
    if (error.field, error.code) == ("reminder_time", "quiet_hours"):
        return quiet_hours_error(error.details["quiet"])
    return str(SETTINGS_ERRORS.get(error.field, SETTINGS_ERRORS["language"]))


def quiet_hours_error(quiet) -> str:
    from flask_babel import gettext

    return gettext(
        "No reminders are sent between %(start)s and %(end)s (quiet hours), so a reminder at this time"
        " would never reach you. Please choose a time from %(end)s to %(start)s.",
        start=quiet.start.strftime("%H:%M"), end=quiet.end.strftime("%H:%M"))

NOT_TAKEN_REASONS = {
    "forgot": _l("I forgot"),
    "vomited": _l("I vomited"),
    "side_effects": _l("Because of side effects"),
    "doctor_said": _l("My doctor told me not to"),
    "other": _l("Another reason"),
}

SEVERITIES = {
    "mild": _l("Mild"),
    "moderate": _l("Moderate"),
    "severe": _l("Severe"),
}

SYMPTOM_GROUPS = {
    "bleeding": _l("Bleeding"),
    "thrombosis": _l("Signs of a blood clot"),
    "liver": _l("Signs of a liver problem"),
    "other": _l("Other"),
}


def dose_error(code: str) -> str:
    return str(DOSE_ERRORS.get(code, _TRY_AGAIN))


def symptom_error(code: str) -> str:
    return str(SYMPTOM_ERRORS.get(code, _TRY_AGAIN))


def reason_label(code: str | None) -> str:
    return str(NOT_TAKEN_REASONS.get(code or "", code or ""))
