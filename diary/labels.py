"""Display labels for stored codes, translated where they are shown (one place for each word)."""

from collections.abc import Iterable

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

DOSE_STATUS = {
    "upcoming": _l("Coming up"),
    "due": _l("To take"),
    # An earlier day still open for late logging: never "to take" (issue 10, finding 2).
    "due_earlier": _l("Not recorded yet"),
    "taken": _l("Taken"),
    "not_taken": _l("Not taken"),
    "missed": _l("Missed"),
    "held": _l("Paused by doctor"),
    "paused": _l("Wait for the team's call"),
    "ended": _l("After the end of the study"),
}
# Why a dose was not taken, as the words staff and the participant's own record read it ("Not taken.
# Reason: vomiting", not the first-person button label "I vomited": issue 10, wording).
NOT_TAKEN_REASON = {
    "forgot": _l("forgot"), "vomited": _l("vomited"), "side_effects": _l("side effects"),
    "doctor_said": _l("doctor said so"), "other": _l("other reason"),
}
ROLE = {"nurse": _l("nurse"), "investigator": _l("investigator"), "admin": _l("admin")}
PARTICIPANT_STATUS = {"active": _l("active"), "withdrawn": _l("withdrawn"), "completed": _l("completed")}
COHORT = {"primary": _l("1 · primary prevention"), "secondary": _l("2 · secondary prevention")}


def _chinese() -> bool:
    locale = get_locale()  # None outside a request: English, as the stored texts are
    return locale is not None and str(locale).startswith("zh")


def list_separator() -> str:
    """Between the items of a list: the enumeration comma 、 on a Chinese page (never a half-width
    comma next to Chinese words), ", " in English."""
    return "、" if _chinese() else ", "


def colon() -> str:
    """After a label: the full-width colon on a Chinese page, ": " in English."""
    return "：" if _chinese() else ": "


def full_stop() -> str:
    """After a sentence that a page puts together from parts: 。 on a Chinese page, "." in English."""
    return "。" if _chinese() else "."


def list_join(items: Iterable) -> str:
    """A list as the page's language writes one: 出血、瘀青 / "bleeding, bruising"."""
    return list_separator().join(str(item) for item in items)
