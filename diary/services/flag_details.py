"""What a flag says, as one catalogue of texts with named values (issue 10, wording).

A flag stores its text in English (`Flag.detail`: the export and the audit trail keep it as
raised) and, beside it, the catalogue key and the values (`detail_key`, `detail_params`), so that
the staff pages show it in each reader's language. A flag without a key (raised before, or with
free text only) shows its stored text.

Values that are themselves words are stored as codes and put into words when shown:
`symptoms` holds checklist keys (the checklist's label in the page's language).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app, has_app_context
from flask_babel import force_locale, get_locale
from flask_babel import lazy_gettext as _l

from diary.labels import list_join

DETAILS = {
    "missed_dose": _l("Dose of course day %(day)s not logged by the cutoff"),
    "overdue_lab": _l("Blood count of course day %(day)s not entered"),
    "urgent_plt": _l("PLT %(plt)s×10⁹/L on day %(day)s: consider rescue therapy"),
    "danger_symptom": _l("Danger symptom: %(symptoms)s"),
    "danger_symptom_note": _l('Danger symptom: %(symptoms)s — participant\'s note: "%(note)s"'),
    "danger_symptom_corrected": _l("Danger symptom (staff correction): %(symptoms)s"),
    "symptom_note": _l('Note with a symptom report (%(symptoms)s) — participant\'s note: "%(note)s"'),
    "dose_in_pause": _l("Tablets reported taken on course day %(day)s during a clinical-review pause: "
                        "proposed protocol deviation"),
    "dose_on_held_day": _l("Tablets reported taken on course day %(day)s, a day held (0 mg) by a signed decision: "
                           "proposed protocol deviation"),
    "doses_too_close": _l("Cycle %(cycle)s days %(earlier)s and %(later)s: doses logged taken %(hours)s h apart "
                          "(less than %(limit)s h): possible double dose"),
    "opt_out_settings": _l("The participant switched SMS reminders off in the diary settings."),
    "opt_out_sms": _l("Participant replied STOP: no more reminder texts"),
    "participant_sms": _l('SMS from participant: "%(text)s"'),
    "sms_failed": _l("SMS (%(kind)s) could not be delivered: %(error)s"),
    "sae": _l("Serious adverse event: %(term)s (grade %(grade)s); report within the reporting clock"),
}
# Free text a participant typed is cut where the stored text is (Flag.detail keeps 500 characters).
_LONGEST = 500


@dataclass(frozen=True)
class FlagDetail:
    """A catalogue text and its values, for raise_flag."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def english(self) -> str:
        with force_locale("en"):
            return render(self.key, self.params) or ""


def detail(key: str, **params: Any) -> FlagDetail:
    if key not in DETAILS:
        raise KeyError(f"no flag text {key!r} in the catalogue")
    return FlagDetail(key, {k: v[:_LONGEST] if isinstance(v, str) else v for k, v in params.items()})


def _symptom_label(key: str) -> str:
    if not has_app_context():
        return key  # a service called outside the app (a script): the checklist key
    try:
        return current_app.extensions["diary.study"].symptom(key).label(str(get_locale() or "en"))
    except KeyError:
        return key  # a symptom since retired from the checklist


def _words(name: str, value: Any) -> Any:
    if name == "symptoms" and isinstance(value, list):
        return list_join(_symptom_label(key) for key in value)
    return value


def render(key: str | None, params: dict | None) -> str | None:
    """The text of a catalogue key with its values in the current language; None when the key is
    unknown or the values do not fit it (the caller shows the stored text)."""
    if key not in DETAILS:
        return None
    try:
        # str() looks the text up in the current language; a mapping fills its named values.
        return str(DETAILS[key]) % {k: _words(k, v) for k, v in (params or {}).items()}
    except (KeyError, ValueError, TypeError):
        return None


def flag_text(flag) -> str:
    """What a flag says, in the page's language: its catalogue text, else its stored text."""
    return render(flag.detail_key, flag.detail_params) or flag.detail
