"""SMS templates (issue 13): one catalogue, each template within one segment at its longest
values, no links without an ICP-filed domain, the filing command, SMS_TEMPLATES and the clear
error, at start-up and in /health, for a template the provider would need but has no id for."""

from __future__ import annotations

import logging
import re

import pytest

from diary.config import SettingsError, load_settings
from diary.messaging import texts
from diary.messaging.filing import load_template_ids, missing_template_ids
from diary.messaging.gateway import ConsoleGateway, FailoverGateway, build_gateway, segment_info
from tests.conftest import make_test_app
from tests.messaging.cn_providers import Provider, write_templates_toml

pytestmark = pytest.mark.any_db

LINK = "https://diary.example.cn"  # 24 characters, the most SMS_LINK_BASE_URL may have
URLISH = re.compile(r"https?://|www\.|\.(?:com|cn|net|org)\b", re.I)


def every_template(link=None):
    return [(key, lang) for key in texts.required_keys(link) for lang in texts.LANGUAGES]


@pytest.mark.parametrize(("key", "lang"), every_template(LINK) + every_template())
def test_every_template_fits_one_segment_at_its_longest_parameter_values(app, key, lang):
    with app.app_context():
        text = texts.longest(key, lang, link=LINK)
    if lang == "zh":
        # A domestic provider puts the signature in front, and it counts (70 characters in all).
        text = texts.SIGNATURE_ALLOWANCE + text

    encoding, segments = segment_info(text)
    assert segments == 1, f"{key} ({lang}): {len(text)} characters in {encoding}: {text}"
    if lang == "en":
        assert encoding == "GSM-7", text


def test_no_template_contains_a_link_unless_sms_link_base_url_is_set(app):
    with app.app_context():
        plain = [texts.longest(key, lang) for key, lang in every_template(None)]
        linked = texts.dose_change("en", day=4, mg=5, tablets=2, show_dose=False, phone="0591", link=LINK)

    assert not [text for text in plain if URLISH.search(text)]
    assert "dose_change_link" not in texts.required_keys(None)
    assert LINK in linked and linked.key == "dose_change_link" and "link" not in linked.params
    assert "dose_change" not in texts.required_keys(LINK)


def test_a_text_remembers_its_template_key_parameters_and_language(app):
    with app.app_context():
        text = texts.dose_reminder("zh", mg=7.5, tablets=3, show_dose=True)

    assert (text.key, text.params, text.language) == ("dose_reminder_dose", {"mg": "7.5", "tablets": "3片"}, "zh")
    assert text == "研究日记：您好，该空腹服用今天的7.5毫克（3片）了，服完请回复1。"


def test_the_outbox_row_stores_the_template_beside_the_rendered_text(app, session, world, clock):
    from diary.messaging.outbox import enqueue

    with app.app_context():
        row = enqueue(session, app.extensions["diary.cipher"], dedupe_key="t:1", kind="notice",
                      site_id=world.sites["A"].id, to="+8613800001111",
                      body=texts.draw_evening("en", phone="0591-1"), not_before=clock.now)
    session.commit()

    assert (row.template, row.template_params, row.language) == ("draw_evening", {"phone": "0591-1"}, "en")
    assert row.body == "Study diary: blood test tomorrow. Questions: 0591-1"


@pytest.mark.parametrize(("provider", "variable"), [("tencent", "{1}"), ("aliyun", "${phone}")])
def test_the_filing_command_prints_every_template_in_the_providers_syntax(runner, provider, variable):
    result = runner.invoke(args=["sms", "templates", "--provider", provider, "--language", "zh"])

    assert result.exit_code == 0, result.output
    for key in texts.required_keys(None):
        assert f"[{key}]" in result.output
    assert "研究日记：明天需要抽血化验，请记得按时来。有疑问请致电" + variable in result.output
    assert "phone: the site's phone number for questions; at most 18 characters" in result.output
    assert "%(" not in result.output


def test_tencent_variables_are_numbered_in_the_order_of_each_language(app):
    with app.app_context():
        zh = texts.provider_text("reply_forwarded", "zh", "tencent")
        order = texts.variables("sae_alert", "zh")

    assert "{1}" in zh and "{2}" in zh and "%(" not in zh
    assert order == ["site", "number", "hours"]  # 中心 before 受试者 in Chinese, unlike English


def test_a_missing_template_id_is_a_clear_error_naming_it(app, client, tmp_path, caplog, database_url):
    templates = write_templates_toml(tmp_path / "t.toml", ["tencent"], leave_out="reply_help")
    settings = {"SMS_BACKEND": "tencent", "SMS_TEMPLATES": str(templates), **Provider("tencent", None).settings()}
    app.config.update(settings)

    problems = missing_template_ids(app.config)
    assert problems == ["SMS template 'reply_help' (zh) has no tencent template id in SMS_TEMPLATES",
                        "SMS template 'reply_help' (en) has no tencent template id in SMS_TEMPLATES"]
    with pytest.raises(ValueError, match="'reply_help' \\(zh\\)"):
        build_gateway(app.config)  # the scheduler refuses to start
    response = client.get("/health")
    assert response.status_code == 503 and response.get_json()["sms"]["errors"] == problems
    with caplog.at_level(logging.ERROR, logger="diary"):
        make_test_app(database_url, **settings)
    assert "'reply_help' (zh)" in caplog.text


def test_sms_templates_is_read_per_provider_and_language(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[aliyun.zh]\ndose_reminder = "SMS_1"\n', encoding="utf-8")
    assert load_template_ids(str(path)) == {"aliyun": {"zh": {"dose_reminder": "SMS_1"}}}

    path.write_text('[aliyun.zh]\nno_such_template = "SMS_1"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="no_such_template"):
        load_template_ids(str(path))


def test_the_console_needs_no_provider_and_no_template_file(tmp_path):
    settings = load_settings({"SMS_BACKEND": "console"}, instance_path=str(tmp_path))

    assert isinstance(build_gateway(settings), ConsoleGateway)
    assert missing_template_ids(settings) == []


def test_domestic_settings_take_secrets_from_files_and_full_endpoint_urls(tmp_path):
    secret = tmp_path / "key"
    secret.write_text("from-a-file\n", encoding="utf-8")
    templates = write_templates_toml(tmp_path / "t.toml", ["tencent", "aliyun"])
    env = {"SMS_BACKEND": "tencent,aliyun", "SMS_TEMPLATES": str(templates), "TENCENT_SECRET_ID": "AKID1",
           "TENCENT_SECRET_KEY_FILE": str(secret), "TENCENT_SMS_SDK_APP_ID": "1400000001",
           "TENCENT_SMS_SIGN_NAME": "研究日记", "TENCENT_SMS_ENDPOINT": "http://127.0.0.1:8030",
           "ALIYUN_ACCESS_KEY_ID": "LTAI1", "ALIYUN_ACCESS_KEY_SECRET_FILE": str(secret),
           "ALIYUN_SMS_SIGN_NAME": "研究日记", "ALIYUN_SMS_ENDPOINT": "http://127.0.0.1:8031"}
    settings = load_settings(env, instance_path=str(tmp_path))

    assert settings["TENCENT_SECRET_KEY"] == settings["ALIYUN_ACCESS_KEY_SECRET"] == "from-a-file"
    gateway = build_gateway(settings)
    assert isinstance(gateway, FailoverGateway)
    assert [g.provider for g in gateway.gateways] == ["tencent", "aliyun"]

    with pytest.raises(ValueError, match="TENCENT_SMS_ENDPOINT"):
        build_gateway({**settings, "TENCENT_SMS_ENDPOINT": "127.0.0.1:8030"})


@pytest.mark.parametrize("env", [{"SMS_BACKEND": "sms77"}, {"SMS_BACKEND": "tencent,tencent"},
                                 {"SMS_BACKEND": "console,aliyun"}, {"SMS_CALLBACK_SECRET": "short"},
                                 {"SMS_LINK_BASE_URL": "http://not-https.example.cn"},
                                 {"SMS_LINK_BASE_URL": "https://a-rather-long-domain.example.cn"}])
def test_bad_sms_settings_refuse_to_start_with_a_clear_error(tmp_path, env):
    with pytest.raises(SettingsError):
        load_settings(env, instance_path=str(tmp_path))


def test_the_scheduler_refuses_to_start_naming_a_missing_template_id(app, runner, tmp_path):
    templates = write_templates_toml(tmp_path / "t.toml", ["aliyun"], leave_out="dose_followup")
    app.config.update(SMS_BACKEND="aliyun", SMS_TEMPLATES=str(templates), **Provider("aliyun", None).settings())
    app.extensions.pop("diary.gateway", None)

    result = runner.invoke(args=["scheduler", "tick", "--now", "2026-12-01T09:00+08:00"])

    assert result.exit_code == 1
    assert "SMS template 'dose_followup' (zh) has no aliyun template id in SMS_TEMPLATES" in result.output
