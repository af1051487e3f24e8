"""SMS texts, in the recipient's language, one segment each (tests/messaging/test_texts.py).

No diagnosis and no drug name ever; the dose in mg and tablets only when the configuration
allows it (SMS_SHOW_DOSE), because an SMS can be read by anyone holding the phone (PIPL).
"""

from __future__ import annotations

from datetime import date

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext as _nl

from diary.messaging.gateway import sms_text


def _render(lang: str, text) -> str:
    # Lazy strings, so that the text is looked up inside force_locale (and is extractable).
    with force_locale(lang):
        return sms_text(str(text))


def dose_reminder(lang: str, *, mg: float, tablets: int, show_dose: bool) -> str:
    if show_dose:
        # ngettext, so that one tablet is "1 tablet" (issue 10, wording).
        return _render(lang, _nl("Study diary: time for today's %(mg)s mg (%(num)d tablet), on an empty "
                                 "stomach. Reply 1 when taken.",
                                 "Study diary: time for today's %(mg)s mg (%(num)d tablets), on an empty "
                                 "stomach. Reply 1 when taken.", tablets, mg=f"{mg:g}"))
    return _render(lang, _l("Study diary: time for today's study tablets, on an empty stomach. "
                            "Reply 1 when taken."))


def dose_reminder_changed(lang: str, *, mg: float, tablets: int, show_dose: bool) -> str:
    """The dose reminder while a signed change is new to the participant (issue 10, finding 8)."""
    if show_dose:
        return _render(lang, _nl("Study diary: your dose has changed. Today take %(mg)s mg (%(num)d tablet), on an "
                                 "empty stomach. Reply 1 when taken.",
                                 "Study diary: your dose has changed. Today take %(mg)s mg (%(num)d tablets), on an "
                                 "empty stomach. Reply 1 when taken.", tablets, mg=f"{mg:g}"))
    return _render(lang, _l("Study diary: your dose has changed; see the diary for today's dose. Take it on an "
                            "empty stomach. Reply 1 when taken."))


def dose_followup(lang: str) -> str:
    return _render(lang, _l("Study diary: we have not seen today's dose yet. Reply 1 once you have "
                            "taken it."))


def draw_evening(lang: str, *, phone: str) -> str:
    return _render(lang, _l("Study diary: blood test tomorrow. Questions: %(phone)s", phone=phone))


def draw_morning(lang: str, *, phone: str) -> str:
    return _render(lang, _l("Study diary: blood test today. Questions: %(phone)s", phone=phone))


def dose_change(lang: str, *, day: int, mg: float, tablets: int, show_dose: bool, phone: str) -> str:
    if mg == 0:
        return _render(lang, _l("Study diary: from day %(day)s, pause your study tablets until the team "
                                "tells you. Questions: %(phone)s", day=day, phone=phone))
    if show_dose:
        return _render(lang, _nl("Study diary: from day %(day)s, take %(mg)s mg (%(num)d tablet) a day. "
                                 "Questions: %(phone)s",
                                 "Study diary: from day %(day)s, take %(mg)s mg (%(num)d tablets) a day. "
                                 "Questions: %(phone)s", tablets, day=day, mg=f"{mg:g}", phone=phone))
    return _render(lang, _l("Study diary: your dose changes from day %(day)s; see the diary. "
                            "Questions: %(phone)s", day=day, phone=phone))


# --- replies to a participant's SMS -----------------------------------------------------------


def reply_logged(lang: str) -> str:
    return _render(lang, _l("Study diary: thank you, today's dose is recorded."))


def _month_day(day: date):
    return _l("%(month)s/%(day)s", month=day.month, day=day.day)


def reply_logged_for(lang: str, *, day: date) -> str:
    with force_locale(lang):
        on = str(_month_day(day))
    return _render(lang, _l("Study diary: thank you, the dose for %(date)s is recorded.", date=on))


def reply_which_day(lang: str, *, today: date, yesterday: date) -> str:
    with force_locale(lang):
        today_text, yesterday_text = str(_month_day(today)), str(_month_day(yesterday))
    return _render(lang, _l("Study diary: which day's dose did you take? Reply TODAY for %(today)s or YESTERDAY "
                            "for %(yesterday)s.", today=today_text, yesterday=yesterday_text))


def reply_nothing_due(lang: str, *, phone: str) -> str:
    return _render(lang, _l("Study diary: there is no dose to record today. Questions: %(phone)s",
                   phone=phone))


def reply_help(lang: str, *, phone: str) -> str:
    # "1 F": the reply syntax inbound.FASTING_WORDS reads (taken, on an empty stomach).
    return _render(lang, _l("Study diary: reply 1 when you have taken today's dose (1 F if on an empty "
                            "stomach), STOP to end texts. Questions: %(phone)s", phone=phone))


def reply_forwarded(lang: str, *, phone: str, emergency: str) -> str:
    return _render(lang, _l("Study diary: your message was passed to your study team. If it is urgent, "
                            "call %(phone)s or %(emergency)s now.", phone=phone, emergency=emergency))


def reply_opted_in(lang: str) -> str:
    return _render(lang, _l("Study diary: you will get reminder texts again. Reply STOP to end them."))


# --- staff ------------------------------------------------------------------------------------


def danger_alert(lang: str, *, study_number: str, site_code: str) -> str:
    return _render(lang, _l("Study diary ALERT: participant %(number)s (site %(site)s) reported a danger "
                            "symptom. Open the flag queue now.", number=study_number, site=site_code))


def sae_alert(lang: str, *, study_number: str, site_code: str, hours: int) -> str:
    return _render(lang, _l("Study diary ALERT: a serious adverse event was recorded for participant %(number)s "
                            "(site %(site)s). Report it within %(hours)s hours.", number=study_number,
                            site=site_code, hours=hours))


def critical_plt_alert(lang: str, *, study_number: str, site_code: str) -> str:
    return _render(lang, _l("Study diary ALERT: participant %(number)s (site %(site)s) has a critical platelet "
                            "count. Open the flag queue now.", number=study_number, site=site_code))


def staff_digest(lang: str, *, day: date, open_flags: int, danger: int, missed: int,
                 labs: int, sms: int, opt_outs: int) -> str:
    return _render(lang, _l("Study diary %(day)s: %(open)s open flags (danger %(danger)s, missed doses "
                            "%(missed)s, blood counts %(labs)s, SMS %(sms)s, opt-outs %(optouts)s).",
                   day=day.isoformat(), open=open_flags, danger=danger, missed=missed, labs=labs,
                   sms=sms, optouts=opt_outs))
