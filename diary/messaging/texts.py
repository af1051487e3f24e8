"""SMS texts as templates: one catalogue, in the recipient's language, one segment each
(tests/messaging/test_texts.py).

Every message is a template key plus named parameters plus a language. The English text is the
msgid and the Chinese text its translation in the messaging catalogue (one catalogue per
language, the single source): Twilio and the console get the rendered text, Tencent Cloud and
Alibaba Cloud SMS get the approved template id plus the parameters (diary/messaging/gateway.py).
`flask sms templates` prints each template in a provider's variable syntax, ready to file.

Adding a message: one `_template(...)` line below (key, text, parameters with their longest
values) and a function that renders it; then its Chinese text (bin/i18n-fill messaging) and, on
a domestic provider, its approved template id in SMS_TEMPLATES.

No diagnosis and no drug name ever; the dose in mg and tablets only when the configuration
allows it (SMS_SHOW_DOSE), because an SMS can be read by anyone holding the phone (PIPL). No
link unless SMS_LINK_BASE_URL names an ICP-filed domain: the link is then fixed template text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from flask_babel import force_locale, lazy_npgettext
from flask_babel import lazy_gettext as _l

from diary.messaging.gateway import sms_text

LANGUAGES = ("zh", "en")
# SMS_LINK_BASE_URL is fixed template text: at most this long, so a linked text stays one SMS.
LINK_MAX_LENGTH = 24
# Domestic providers put the signature before the text (【研究日记】), and it counts toward the
# 70 characters of a Chinese SMS: the segment test leaves room for a signature of 4 characters.
SIGNATURE_ALLOWANCE = "【研究日记】"
PROVIDER_SYNTAX = ("tencent", "aliyun")
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Param:
    """A template variable: its name, what it means (for the filing form) and its longest value
    in each language (its maximum length, and what the segment test renders)."""

    name: str
    meaning: str
    longest: str | Mapping[str, str]

    def longest_in(self, language: str) -> str:
        return self.longest if isinstance(self.longest, str) else self.longest[language]

    def max_length(self, language: str) -> int:
        return len(self.longest_in(language))


@dataclass(frozen=True)
class Template:
    key: str
    text: object  # a lazy gettext string with %(name)s placeholders
    params: tuple[Param, ...] = ()
    # Needs SMS_LINK_BASE_URL, as fixed text: used (and filed) only when it is set, instead of `replaces`.
    replaces: str | None = None
    fixed: tuple[str, ...] = field(default=())


CATALOGUE: dict[str, Template] = {}


def _template(key: str, text, *params: Param, replaces: str | None = None) -> Template:
    fixed = ("link",) if replaces else ()
    template = Template(key, text, params, replaces, fixed)
    CATALOGUE[key] = template
    return template


class Text(str):
    """A rendered SMS that remembers its template: key, parameters and language. A str, so that
    callers hand it on as a body; the outbox stores both the text and the template."""

    key: str
    params: dict[str, str]
    language: str

    def __new__(cls, rendered: str, *, key: str, params: Mapping[str, str], language: str) -> Text:
        text = super().__new__(cls, rendered)
        text.key, text.params, text.language = key, dict(params), language
        return text


def source(key: str, language: str) -> str:
    """The template's text in `language`, with its %(name)s placeholders."""
    with force_locale(language):
        return str(CATALOGUE[key].text)


def variables(key: str, language: str) -> list[str]:
    """The template's variable names in the order they first appear in `language` (Tencent's
    {1}, {2}… follow this order; the Tencent adapter sends the values in the same order)."""
    fixed = CATALOGUE[key].fixed
    names: list[str] = []
    for name in _PLACEHOLDER.findall(source(key, language)):
        if name not in names and name not in fixed:
            names.append(name)
    return names


def provider_text(key: str, language: str, provider: str, *, link: str | None = None) -> str:
    """The template as filed with `provider`: Tencent's {1}, {2}… or Alibaba's ${name}."""
    order = variables(key, language)

    def placeholder(match: re.Match) -> str:
        name = match.group(1)
        if name == "link" and "link" in CATALOGUE[key].fixed:
            return link or "%(link)s"
        return f"{{{order.index(name) + 1}}}" if provider == "tencent" else f"${{{name}}}"

    return sms_text(_PLACEHOLDER.sub(placeholder, source(key, language)))


def render(key: str, language: str, **params) -> Text:
    """The template `key` in `language` with these parameters (values become strings)."""
    template = CATALOGUE[key]
    values = {name: str(value) for name, value in params.items()}
    wanted = {p.name for p in template.params} | set(template.fixed)
    if set(values) != wanted:
        raise ValueError(f"template {key} takes {sorted(wanted)}, not {sorted(values)}")
    text = sms_text(source(key, language) % values)
    kept = {name: value for name, value in values.items() if name not in template.fixed}
    return Text(text, key=key, params=kept, language=language)


def required_keys(link_base_url: str | None) -> list[str]:
    """The templates the app may send: a linked variant instead of the one it replaces when
    SMS_LINK_BASE_URL is set, and no linked one otherwise."""
    keys = []
    for key, template in CATALOGUE.items():
        if template.replaces and not link_base_url:
            continue
        if not template.replaces and link_base_url and any(t.replaces == key for t in CATALOGUE.values()):
            continue
        keys.append(key)
    return keys


# --- parameters ---------------------------------------------------------------------------------

PHONE = Param("phone", "the site's phone number for questions", "+86-591-8888-88888")
MG = Param("mg", "today's dose in mg (only with SMS_SHOW_DOSE)", "12.5")
TABLETS = Param("tablets", "number of tablets, with the word (only with SMS_SHOW_DOSE)",
                {"en": "5 tablets", "zh": "5片"})
DAY = Param("day", "course day from which the change applies", "14")
DATE = {"en": "12/31", "zh": "12月31日"}
STUDY_NUMBER = Param("number", "participant's study number (no name)", "SITE2-001234")
SITE_CODE = Param("site", "site code", "SITE-02")


def _tablets(tablets: int):
    # ngettext, so that one tablet is "1 tablet" (issue 10, wording).
    # Its own context: an SMS writes "2片" where a page writes "2 片" (one character counts here).
    return lazy_npgettext("sms", "%(num)d tablet", "%(num)d tablets", tablets)


# --- participants -------------------------------------------------------------------------------

_template("dose_reminder", _l("Study diary: time for today's study tablets, on an empty stomach. "
                              "Reply 1 when taken."))
_template("dose_reminder_dose", _l("Study diary: time for today's %(mg)s mg (%(tablets)s), on an empty "
                                   "stomach. Reply 1 when taken."), MG, TABLETS)
_template("dose_reminder_changed", _l("Study diary: your dose has changed; see the diary for today's dose. "
                                      "Take it on an empty stomach. Reply 1 when taken."))
_template("dose_reminder_changed_dose", _l("Study diary: your dose has changed. Today take %(mg)s mg (%(tablets)s), "
                                           "on an empty stomach. Reply 1 when taken."), MG, TABLETS)
_template("dose_followup", _l("Study diary: we have not seen today's dose yet. Reply 1 once you have "
                              "taken it."))
_template("draw_evening", _l("Study diary: blood test tomorrow. Questions: %(phone)s"), PHONE)
_template("draw_morning", _l("Study diary: blood test today. Questions: %(phone)s"), PHONE)
_template("dose_pause", _l("Study diary: from day %(day)s, pause your study tablets until the team "
                           "tells you. Questions: %(phone)s"), DAY, PHONE)
_template("dose_change_dose", _l("Study diary: from day %(day)s, take %(mg)s mg (%(tablets)s) a day. "
                                 "Questions: %(phone)s"), DAY, MG, TABLETS, PHONE)
_template("dose_change", _l("Study diary: your dose changes from day %(day)s; see the diary. "
                            "Questions: %(phone)s"), DAY, PHONE)
_template("dose_change_link", _l("Study diary: your dose changes from day %(day)s, see %(link)s "
                                 "Questions: %(phone)s"), DAY, PHONE, replaces="dose_change")
_template("pin_code", _l("Your diary code is %(code)s. It works for %(minutes)s minutes. Do not share it."),
          Param("code", "one-time code", "12345678"), Param("minutes", "minutes the code works", "60"))


def _with_tablets(mg: float, tablets: int, lang: str) -> dict[str, str]:
    with force_locale(lang):
        return {"mg": f"{mg:g}", "tablets": str(_tablets(tablets) % {"num": tablets})}


def dose_reminder(lang: str, *, mg: float, tablets: int, show_dose: bool) -> Text:
    if show_dose:
        return render("dose_reminder_dose", lang, **_with_tablets(mg, tablets, lang))
    return render("dose_reminder", lang)


def dose_reminder_changed(lang: str, *, mg: float, tablets: int, show_dose: bool) -> Text:
    """The dose reminder while a signed change is new to the participant (issue 10, finding 8)."""
    if show_dose:
        return render("dose_reminder_changed_dose", lang, **_with_tablets(mg, tablets, lang))
    return render("dose_reminder_changed", lang)


def dose_followup(lang: str) -> Text:
    return render("dose_followup", lang)


def draw_evening(lang: str, *, phone: str) -> Text:
    return render("draw_evening", lang, phone=phone)


def draw_morning(lang: str, *, phone: str) -> Text:
    return render("draw_morning", lang, phone=phone)


def dose_change(lang: str, *, day: int, mg: float, tablets: int, show_dose: bool, phone: str,
                link: str | None = None) -> Text:
    """`link`: SMS_LINK_BASE_URL (an ICP-filed domain), shown instead of "see the diary"."""
    if mg == 0:
        return render("dose_pause", lang, day=day, phone=phone)
    if show_dose:
        return render("dose_change_dose", lang, day=day, phone=phone, **_with_tablets(mg, tablets, lang))
    if link:
        return render("dose_change_link", lang, day=day, phone=phone, link=link)
    return render("dose_change", lang, day=day, phone=phone)


def pin_code(lang: str, *, code: str, minutes: int) -> Text:
    return render("pin_code", lang, code=code, minutes=minutes)


# --- replies to a participant's SMS -----------------------------------------------------------

_template("reply_logged", _l("Study diary: thank you, today's dose is recorded."))
_template("reply_logged_for", _l("Study diary: thank you, the dose for %(date)s is recorded."),
          Param("date", "the day the dose was recorded for", DATE))
_template("reply_which_day", _l("Study diary: which day's dose did you take? Reply TODAY for %(today)s or "
                                "YESTERDAY for %(yesterday)s."),
          Param("today", "today's date", DATE), Param("yesterday", "yesterday's date", DATE))
_template("reply_nothing_due", _l("Study diary: there is no dose to record today. Questions: %(phone)s"), PHONE)
# "1 F": the reply syntax inbound.FASTING_WORDS reads (taken, on an empty stomach).
_template("reply_help", _l("Study diary: reply 1 when you have taken today's dose (1 F if on an empty "
                           "stomach), STOP to end texts. Questions: %(phone)s"), PHONE)
_template("reply_forwarded", _l("Study diary: your message was passed to your study team. If it is urgent, "
                                "call %(phone)s or %(emergency)s now."),
          PHONE, Param("emergency", "local emergency number", "+86-591-8888-88888"))
_template("reply_opted_in", _l("Study diary: you will get reminder texts again. Reply STOP to end them."))


def reply_logged(lang: str) -> Text:
    return render("reply_logged", lang)


def _month_day(day: date, lang: str) -> str:
    with force_locale(lang):
        return str(_l("%(month)s/%(day)s", month=day.month, day=day.day))


def reply_logged_for(lang: str, *, day: date) -> Text:
    return render("reply_logged_for", lang, date=_month_day(day, lang))


def reply_which_day(lang: str, *, today: date, yesterday: date) -> Text:
    return render("reply_which_day", lang, today=_month_day(today, lang), yesterday=_month_day(yesterday, lang))


def reply_nothing_due(lang: str, *, phone: str) -> Text:
    return render("reply_nothing_due", lang, phone=phone)


def reply_help(lang: str, *, phone: str) -> Text:
    return render("reply_help", lang, phone=phone)


def reply_forwarded(lang: str, *, phone: str, emergency: str) -> Text:
    return render("reply_forwarded", lang, phone=phone, emergency=emergency)


def reply_opted_in(lang: str) -> Text:
    return render("reply_opted_in", lang)


# --- staff ------------------------------------------------------------------------------------

_template("danger_alert", _l("Study diary ALERT: participant %(number)s (site %(site)s) reported a danger "
                             "symptom. Open the flag queue now."), STUDY_NUMBER, SITE_CODE)
_template("sae_alert", _l("Study diary ALERT: a serious adverse event was recorded for participant %(number)s "
                          "(site %(site)s). Report it within %(hours)s hours."),
          STUDY_NUMBER, SITE_CODE, Param("hours", "hours left to report the SAE", "168"))
_template("critical_plt_alert", _l("Study diary ALERT: participant %(number)s (site %(site)s) has a critical "
                                   "platelet count. Open the flag queue now."), STUDY_NUMBER, SITE_CODE)
_COUNT = "9999"
_template("staff_digest", _l("Study diary %(day)s: %(open)s open flags (danger %(danger)s, missed doses "
                             "%(missed)s, blood counts %(labs)s, SMS %(sms)s, opt-outs %(optouts)s)."),
          Param("day", "date of the digest", "2026-12-31"), Param("open", "open flags", _COUNT),
          Param("danger", "danger-symptom flags", "999"), Param("missed", "missed-dose flags", "999"),
          Param("labs", "overdue blood-count flags", "999"), Param("sms", "undeliverable-SMS flags", "999"),
          Param("optouts", "opt-out flags", "999"))


def danger_alert(lang: str, *, study_number: str, site_code: str) -> Text:
    return render("danger_alert", lang, number=study_number, site=site_code)


def sae_alert(lang: str, *, study_number: str, site_code: str, hours: int) -> Text:
    return render("sae_alert", lang, number=study_number, site=site_code, hours=hours)


def critical_plt_alert(lang: str, *, study_number: str, site_code: str) -> Text:
    return render("critical_plt_alert", lang, number=study_number, site=site_code)


def staff_digest(lang: str, *, day: date, open_flags: int, danger: int, missed: int,
                 labs: int, sms: int, opt_outs: int) -> Text:
    return render("staff_digest", lang, day=day.isoformat(), open=open_flags, danger=danger, missed=missed,
                  labs=labs, sms=sms, optouts=opt_outs)


def longest(key: str, language: str, *, link: str | None = None) -> Text:
    """The template at its longest parameter values (segment test, filing command)."""
    template = CATALOGUE[key]
    values = {p.name: p.longest_in(language) for p in template.params}
    if template.fixed:
        values["link"] = link or "https://" + "d" * (LINK_MAX_LENGTH - len("https://.cn")) + ".cn"
    return render(key, language, **values)
