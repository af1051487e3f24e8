"""Issue 10, wording: the Chinese pages read as Chinese.

Flag details and the rule table's texts are shown translated on the Chinese staff pages (the
stored English stays for the export and the audit trail), and no half-width , : ; sits next to
Chinese text on the main participant and staff pages.
"""

import re
from html.parser import HTMLParser

import pytest
from flask_babel import force_locale
from sqlmodel import select

from diary import study
from diary.models import Flag
from diary.services import decisions, labs, symptoms
from diary.services.flag_details import detail
from diary.services.flags import raise_flag
from diary.staff import vocab
from tests.web.staff_helpers import site_a_rows

pytestmark = pytest.mark.any_db


def _flags(app, session, world, clock):
    cfg = app.extensions["diary.study"]
    pa, course = world.participants["pa"], world.courses["pa"]
    raise_flag(session, key="missed:x:2", kind="missed_dose", site_id=pa.site_id, participant_id=pa.id,
               detail=detail("missed_dose", day=2), now=clock.now)
    labs.record_lab(session, cfg, course=course, course_day=3, drawn_on=clock.now.date(), plt=15,
                    staff_id=world.staff["nurse_a"].id, now=clock.now)
    symptoms.report_symptoms(
        session, cfg, participant=pa, symptoms=[{"key": "vomiting_blood", "severity": "severe"},
                                                {"key": "coughing_blood", "severity": "mild"}],
        noticed_at=clock.now, client_key="sym-danger", source="participant", now=clock.now,
        course_id=course.id, note="吐了两次")
    session.commit()


def test_flag_details_are_in_chinese_on_the_chinese_staff_pages(app, client, auth, world, session, clock):
    with app.test_request_context():
        _flags(app, session, world, clock)
    auth.staff("nurse_a")  # no Accept-Language: the staff pages are in Chinese

    html = client.get("/staff/flags").get_data(as_text=True)

    assert "疗程第 2 天的服药在截止时间前未记录" in html
    assert "第 3 天 PLT 15×10⁹/L：请考虑补救治疗" in html
    assert "危险症状：呕血，或呕吐物像咖啡渣、咳血——受试者备注：“吐了两次”" in html
    assert "not logged by the cutoff" not in html and "consider rescue therapy" not in html


def test_the_stored_flag_text_stays_english_for_the_export_and_audit(app, world, session, clock):
    with app.test_request_context():
        _flags(app, session, world, clock)

    stored = set(session.exec(select(Flag.detail)).all())

    assert "Dose of course day 2 not logged by the cutoff" in stored
    assert "PLT 15×10⁹/L on day 3: consider rescue therapy" in stored
    assert ("Danger symptom: Vomiting blood, or vomit that looks like coffee grounds, Coughing up blood"
            ' — participant\'s note: "吐了两次"') in stored


def test_english_staff_pages_show_the_english_flag_text(app, client, auth, world, session, clock):
    with app.test_request_context():
        _flags(app, session, world, clock)
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    auth.staff("nurse_a")

    assert "Dose of course day 2 not logged by the cutoff" in client.get("/staff/flags").get_data(as_text=True)


def test_a_flag_raised_with_plain_text_shows_its_stored_text(app, client, auth, world, session, clock):
    pa = world.participants["pa"]
    raise_flag(session, key="old:1", kind="missed_dose", site_id=pa.site_id, participant_id=pa.id,
               detail="Day 2: no dose recorded by the cutoff", now=clock.now)
    session.commit()
    auth.staff("nurse_a")

    assert "Day 2: no dose recorded by the cutoff" in client.get("/staff/flags").get_data(as_text=True)


def test_the_rule_table_text_is_in_chinese_on_the_decision_page(app, client, auth, world, session, clock):
    lab = labs.record_lab(session, app.extensions["diary.study"], course=world.courses["pa"], course_day=3,
                          drawn_on=clock.now.date(), plt=40, staff_id=world.staff["nurse_a"].id, now=clock.now)
    session.commit()
    auth.staff("investigator_a")

    html = client.get(f"/staff/courses/{world.courses['pa'].id}/decision?lab={lab.id}").get_data(as_text=True)

    assert "R3：PLT &lt; 50×10⁹/L → 上调一档至 7.5 毫克" in html


def test_each_translated_rule_says_in_english_what_the_rule_table_says(app):
    cfg = app.extensions["diary.study"]
    cases = [(150, None, 5), (80, 20, 5), (30, None, 0), (30, None, cfg.max_dose_mg), (30, None, 5), (70, None, 5)]
    seen = set()
    with app.test_request_context(), force_locale("en"):
        for plt, baseline, current in cases:
            suggestion = study.suggest_dose(current, plt, baseline, cfg)
            assert vocab.rule_text(suggestion) == suggestion.rule
            seen.add(suggestion.rule_key)
    assert seen == set(study.RULE_TEXTS) == set(vocab.RULE)


# --- full-width punctuation ---------------------------------------------------------------------

CJK = "\u3000-\u303f\u4e00-\u9fff\uff00-\uffef"
# A half-width , ; : right after or before Chinese text (one space allowed): "出血, 瘀青", "增加: 7.5".
HALF_WIDTH = re.compile(rf"[{CJK}] ?[,;:]|[,;:] ?[{CJK}]")


class _Text(HTMLParser):
    """The text a reader sees: no tags, no scripts, no styles; attribute values (labels) are kept."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        self.parts.extend(v for k, v in attrs if k in ("aria-label", "title", "placeholder", "alt") and v)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


# A dose in Latin units on a Chinese page ("5 mg", "7.5mg"): Chinese pages say 毫克 (issue 10, wording).
LATIN_MG = re.compile(r"\d\s?mg\b")


def _reader_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def half_width_next_to_chinese(html: str) -> list[str]:
    text = _reader_text(html)
    hits = [text[max(m.start() - 20, 0):m.end() + 20] for m in HALF_WIDTH.finditer(text)]
    return hits + [text[max(m.start() - 20, 0):m.end() + 20] for m in LATIN_MG.finditer(text)]


def test_the_main_pages_use_no_half_width_separator_or_latin_mg_in_chinese(app, client, auth, world, session, clock):
    pa, course = world.participants["pa"], world.courses["pa"]
    pa.language = "zh"
    session.add(pa)
    rows = site_a_rows(app, session, world, clock)
    with app.test_request_context():
        _flags(app, session, world, clock)
        symptoms.report_symptoms(
            session, app.extensions["diary.study"], participant=pa, noticed_at=clock.now, client_key="sym-2",
            symptoms=[{"key": "bruising", "severity": "mild"}, {"key": "nosebleed", "severity": "moderate"}],
            source="participant", now=clock.now, course_id=course.id)
        decisions.sign_decision(session, app.extensions["diary.study"], course=course,
                                signer=world.staff["investigator_a"], effective_day=4, dose_mg=7.5,
                                current_dose_mg=5, now=clock.now)
        session.commit()
    found = {}
    auth.participant("pa")
    for url in ("/", f"/courses/{course.id}/days/3", f"/courses/{course.id}/days/2", "/calendar", "/symptoms",
                "/settings"):
        found[url] = half_width_next_to_chinese(client.get(url).get_data(as_text=True))
    client.post("/logout", data={"csrf_token": auth.csrf("/settings")})
    clock.advance(minutes=1)
    auth.staff("nurse_a")
    for url in ("/staff/", f"/staff/participants/{pa.id}", "/staff/flags", "/staff/adherence",
                "/staff/adherence/summary", f"/staff/courses/{course.id}/decision?lab={rows.lab_id}",
                f"/staff/screenings/{rows.screening_id}", f"/staff/participants/{pa.id}/audit"):
        r = client.get(url)
        assert r.status_code == 200, url
        found[url] = half_width_next_to_chinese(r.get_data(as_text=True))

    assert {url: hits for url, hits in found.items() if hits} == {}


def test_the_check_catches_what_it_should():
    assert half_width_next_to_chinese("<p>鼻出血（轻度）, 瘀青</p>")
    assert half_width_next_to_chinese("<p>增加: 7.5 mg</p>")
    assert not half_width_next_to_chinese("<p>提醒时间 08:00 (Asia/Shanghai)</p>")
    assert not half_width_next_to_chinese("<p>Danger symptom: bleeding, bruising</p>")
    assert half_width_next_to_chinese("<p>今天服用海曲泊帕 5 mg</p>")
    assert not half_width_next_to_chinese("<p>今天服用海曲泊帕 5 毫克（2 片）</p>")


def test_a_list_on_a_chinese_page_is_joined_with_the_enumeration_comma(app):
    from diary.labels import list_join

    with app.test_request_context(), force_locale("zh"):
        assert list_join(["出血", "瘀青"]) == "出血、瘀青"
    with app.test_request_context(), force_locale("en"):
        assert list_join(["bleeding", "bruising"]) == "bleeding, bruising"


def test_each_page_is_in_its_own_readers_language_when_readers_of_both_languages_take_turns(app, world):
    # Templates look their language up once per render (diary._translate_templates_per_render); a
    # look-up kept from one person's page must never show up on the next person's.
    chinese, english = app.test_client(), app.test_client()
    chinese.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN,zh;q=0.9"
    english.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    for _turn in range(3):
        zh = chinese.get("/login").get_data(as_text=True)
        en = english.get("/login").get_data(as_text=True)
        assert "服药日记" in zh and "Medicine diary" not in zh
        assert "Medicine diary" in en and "服药日记" not in en


def test_the_day_card_macros_speak_each_participants_language_when_both_take_turns(app, world, session):
    # The day card's macros (diary status words, the empty-stomach question) come from a macro
    # module that is built once and kept across requests: it must look each reader's language up
    # for each page, not keep the first reader's.
    from tests.conftest import PIN, csrf_from

    world.participants["pa"].language = "zh"
    session.add(world.participants["pa"])
    session.commit()
    phones = {}
    for key in ("pa", "pb"):
        phone = phones[key] = app.test_client()
        r = phone.post("/login", data={"csrf_token": csrf_from(phone, "/login"), "phone": world.phones[key],
                                       "pin": PIN})
        assert r.status_code == 302
    for _turn in range(3):
        zh = phones["pa"].get("/").get_data(as_text=True)
        en = phones["pb"].get("/").get_data(as_text=True)
        assert "待服药" in zh and "您是空腹服用的吗？" in zh
        assert "To take" not in zh and "empty stomach" not in zh
        assert "To take" in en and "Did you take it on an empty stomach?" in en
        assert "待服药" not in en and "空腹" not in en
