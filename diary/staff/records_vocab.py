"""Staff-facing labels for the codes of the audited records (accountability, adverse events)."""

from flask_babel import lazy_gettext as _l

from diary.records import OTHER_TERM, RecordsConfig

MOVEMENT = {"dispensed": _l("Dispensed"), "returned": _l("Returned")}
LOT_WARNING = {
    "expired": _l("This lot has expired."),
    "expires_during_course": _l("This lot expires before the course ends."),
    "wrong_strength": _l("The tablet strength differs from the strength the dose instructions assume."),
}
SAE_CRITERION = {
    "death": _l("Results in death"), "life_threatening": _l("Life-threatening"),
    "hospitalisation": _l("Requires or prolongs hospitalisation"),
    "disability": _l("Persistent or significant disability"),
    "congenital_anomaly": _l("Congenital anomaly"), "important_medical_event": _l("Important medical event"),
}
RELATEDNESS = {
    "not_related": _l("Not related"), "unlikely": _l("Unlikely related"), "possible": _l("Possibly related"),
    "probable": _l("Probably related"), "definite": _l("Definitely related"),
}
ACTION = {
    "dose_not_changed": _l("Dose not changed"), "dose_reduced": _l("Dose reduced"),
    "drug_interrupted": _l("Drug interrupted"), "drug_withdrawn": _l("Drug withdrawn"),
    "not_applicable": _l("Not applicable"), "unknown": _l("Unknown"),
}
OUTCOME = {
    "recovered": _l("Recovered / resolved"), "recovering": _l("Recovering / resolving"),
    "not_recovered": _l("Not recovered / not resolved"),
    "recovered_with_sequelae": _l("Recovered with sequelae"), "fatal": _l("Fatal"), "unknown": _l("Unknown"),
}
AE_STATUS = {"draft": _l("draft"), "recorded": _l("recorded")}
DEVIATION_CATEGORY = {
    "dosing": _l("Dosing"), "prohibited_medication": _l("Prohibited medication"),
    "missed_assessment": _l("Missed assessment"), "visit_window": _l("Visit outside its window"),
    "eligibility": _l("Eligibility"), "other": _l("Other"),
}
CLASSIFICATION = {"minor": _l("Minor"), "major": _l("Major")}
DEVIATION_STATUS = {"proposed": _l("Proposed"), "confirmed": _l("Confirmed"), "dismissed": _l("Dismissed"),
                    "closed": _l("Closed")}
DECISIONS = {
    "proposed": [("confirm", _l("Confirm")), ("dismiss", _l("Dismiss"))],
    "confirmed": [("correct", _l("Correct")), ("close", _l("Close (investigator)"))],
}
CATEGORY = {"bleeding": _l("Bleeding"), "thrombosis": _l("Thrombosis"), "liver": _l("Liver")}


def term_label(rcfg: RecordsConfig, key: str, text: str | None, lang: str) -> str:
    """A CTCAE term in the page's language, or the free text typed for 'other'."""
    if key == OTHER_TERM:
        return text or "—"
    term = rcfg.adverse_events.term(key)
    return term.label(lang) if term else key
