"""Every SMS text, in both languages, with long-ish values, fits one segment and names no drug
or diagnosis."""

from datetime import date

import pytest

from diary.messaging import texts
from diary.messaging.gateway import segment_info

# None
pytestmark = pytest.mark.any_db

PHONE = "+86-591-8888-88888"
RENDERINGS = {
    "dose reminder": lambda lang: texts.dose_reminder(lang, mg=7.5, tablets=3, show_dose=False),
    "dose reminder with the dose": lambda lang: texts.dose_reminder(lang, mg=12.5, tablets=5, show_dose=True),
    "follow-up": lambda lang: texts.dose_followup(lang),
    "blood test tomorrow": lambda lang: texts.draw_evening(lang, phone=PHONE),
    "blood test today": lambda lang: texts.draw_morning(lang, phone=PHONE),
    "dose change": lambda lang: texts.dose_change(lang, day=14, mg=7.5, tablets=3, show_dose=False, phone=PHONE),
    "dose change with the dose": lambda lang: texts.dose_change(lang, day=14, mg=12.5, tablets=5, show_dose=True,
                                                                phone=PHONE),
    "hold": lambda lang: texts.dose_change(lang, day=14, mg=0, tablets=0, show_dose=True, phone=PHONE),
    "reply: logged": lambda lang: texts.reply_logged(lang),
    "reply: nothing due": lambda lang: texts.reply_nothing_due(lang, phone=PHONE),
    "reply: help": lambda lang: texts.reply_help(lang, phone=PHONE),
    "reply: forwarded": lambda lang: texts.reply_forwarded(lang, phone=PHONE, emergency="120"),
    "reply: opted in": lambda lang: texts.reply_opted_in(lang),
    "danger alert": lambda lang: texts.danger_alert(lang, study_number="SITE2-001234", site_code="SITE-02"),
    "sae alert": lambda lang: texts.sae_alert(lang, study_number="SITE2-001234", site_code="SITE-02", hours=24),
    "critical PLT alert": lambda lang: texts.critical_plt_alert(lang, study_number="SITE2-001234",
                                                                site_code="SITE-02"),
    "digest": lambda lang: texts.staff_digest(lang, day=date(2026, 12, 31), open_flags=9999, danger=999,
                                              missed=999, labs=999, sms=999, opt_outs=999),
}
FORBIDDEN = ("hetrombopag", "海曲泊帕", "cancer", "癌", "thrombocytopenia", "血小板减少", "chemotherapy", "化疗")


@pytest.fixture
def render(app):
    def run(name, lang):
        with app.app_context():
            return RENDERINGS[name](lang)

    return run


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("name", sorted(RENDERINGS))
def test_each_text_fits_one_sms_segment(render, name, lang):
    text = render(name, lang)

    encoding, segments = segment_info(text)
    assert segments == 1, f"{len(text)} characters in {encoding}: {text}"


@pytest.mark.parametrize("name", sorted(RENDERINGS))
def test_each_text_is_translated_into_chinese(render, name):
    assert render(name, "zh") != render(name, "en")
    assert "研究日记" in render(name, "zh")


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("name", sorted(RENDERINGS))
def test_no_text_names_the_drug_or_a_diagnosis(render, name, lang):
    text = render(name, lang).lower()

    assert not [word for word in FORBIDDEN if word in text]


def test_english_texts_stay_in_the_gsm_alphabet(render):
    assert {segment_info(render(name, "en"))[0] for name in RENDERINGS} == {"GSM-7"}


def test_the_dose_appears_only_when_the_configuration_allows_it(render):
    assert "mg" not in render("dose reminder", "en") and "毫克" not in render("dose reminder", "zh")
    assert "12.5 mg" in render("dose reminder with the dose", "en")


@pytest.mark.parametrize(("tablets", "words"), [(1, "(1 tablet)"), (3, "(3 tablets)")])
def test_one_tablet_is_one_tablet_not_one_tablets(app, tablets, words):
    with app.app_context():
        assert words in texts.dose_reminder("en", mg=2.5 * tablets, tablets=tablets, show_dose=True)
        assert words in texts.dose_change("en", day=3, mg=2.5 * tablets, tablets=tablets, show_dose=True,
                                          phone=PHONE)
        assert f"（{tablets}片）" in texts.dose_reminder("zh", mg=2.5 * tablets, tablets=tablets, show_dose=True)
