"""Staff-facing labels for stored codes (translated where shown); symbols pair with colours."""

from flask_babel import lazy_gettext as _l

from diary import labels

# Each day status has a colour (CSS class st-<status>) AND a symbol AND a word: never colour alone.
DAY_STATUS = {
    "taken": ("✓", _l("Taken")),
    "not_taken": ("✗", _l("Not taken")),
    "missed": ("!", _l("Missed")),
    "due": ("○", _l("Due today")),
    "upcoming": ("·", _l("Coming up")),
    "held": ("‖", _l("Held")),
    "paused": ("⏸", _l("Paused for review")),
    "ended": ("–", _l("After end of participation")),
}
FLAG_KIND = {
    "missed_dose": _l("Missed dose"),
    "danger_symptom": _l("Danger symptom"),
    "overdue_lab": _l("Overdue blood count"),
    "sms_failed": _l("Undeliverable SMS"),
    "opt_out": _l("SMS opt-out"),
    "urgent_plt": _l("Urgent PLT"),
    "sae": _l("Serious adverse event"),
    "accountability": _l("Tablet count discrepancy"),
    "participant_message": _l("Message from participant"),
    "dose_in_pause": _l("Dose taken during a review pause"),
    "dose_on_held_day": _l("Dose taken on a held day"),
    "doses_too_close": _l("Two doses too close together"),
}
PAUSE_CAUSE = {
    "danger_symptom": _l("opened by a danger symptom report"),
    "critical_plt": _l("opened by a critical platelet count"),
}
ACTION = {
    "continue": _l("continue"), "increase": _l("increase"), "reduce": _l("reduce"), "hold": _l("hold"),
    "resume": _l("resume"),
}
# The rule table's texts (study.RULE_TEXTS: the same English words, tests/unit/test_translations.py).
RULE = {
    "R1": _l("R1: PLT ≥ %(hold)s×10⁹/L → hold for the rest of the course"),
    "R2": _l("R2: PLT ≥ %(rise)s×10⁹/L above the course baseline (%(baseline)s) → hold for the rest of the course"),
    "R4": _l("R4: held and PLT < %(hold)s×10⁹/L → resume at the starting dose %(start)s mg"),
    "R3_max": _l("R3: PLT < %(below)s×10⁹/L but already at the maximum %(max)s mg → continue at %(mg)s mg"),
    "R3": _l("R3: PLT < %(below)s×10⁹/L → one step up to %(mg)s mg"),
    "R5": _l("R5: PLT %(below)s–%(hold)s×10⁹/L → continue at %(mg)s mg"),
}
COURSE_STATE = {"running": _l("running"), "finished": _l("finished"), "upcoming": _l("not started")}
ADC_DRUG = {
    "trastuzumab_deruxtecan": _l("trastuzumab deruxtecan (T-DXd)"),
    "trastuzumab_emtansine": _l("trastuzumab emtansine (T-DM1)"),
    "sacituzumab_govitecan": _l("sacituzumab govitecan"),
    "disitamab_vedotin": _l("disitamab vedotin"),
    "datopotamab_deruxtecan": _l("datopotamab deruxtecan"),
    "trastuzumab_rezetecan": _l("trastuzumab rezetecan (SHR-A1811)"),
    "other": _l("other"),
}
FASTING = {"yes": _l("on an empty stomach"), "no": _l("not on an empty stomach"),
           "unsure": _l("empty stomach not sure")}
# Which provider accepted an SMS (Message.provider), shown in the timeline.
SMS_PROVIDER = {"tencent": _l("Tencent Cloud SMS"), "aliyun": _l("Alibaba Cloud SMS"), "twilio": "Twilio",
                "console": _l("development console")}
SOURCE = {"participant": _l("participant"), "staff": _l("staff"), "sms": _l("SMS reply")}
SEVERITY = {"mild": _l("mild"), "moderate": _l("moderate"), "severe": _l("severe"),
            "not_stated": _l("severity not stated")}
NOT_TAKEN_REASON = labels.NOT_TAKEN_REASON


def rule_text(suggestion) -> str:
    """A suggestion's rule in the page's language (its English text for a rule not in RULE)."""
    template = RULE.get(suggestion.rule_key)
    return str(template) % dict(suggestion.rule_params) if template is not None else suggestion.rule


def adc(code: str) -> str:
    return ADC_DRUG.get(code, code)


def symptom_label(cfg, key: str, lang: str) -> str:
    """The checklist's label for a reported symptom, in the page's language; the key if retired."""
    try:
        return cfg.symptom(key).label(lang)
    except KeyError:
        return key
