"""Display labels for stored codes, translated where they are shown (one place for each word)."""

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
ROLE = {"nurse": _l("nurse"), "investigator": _l("investigator"), "admin": _l("admin")}
PARTICIPANT_STATUS = {"active": _l("active"), "withdrawn": _l("withdrawn"), "completed": _l("completed")}
COHORT = {"primary": _l("1 · primary prevention"), "secondary": _l("2 · secondary prevention")}
