"""Every participant- and staff-facing string has a Simplified Chinese translation."""

import re
import tomllib
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
AREAS = ROOT / "diary" / "translations"
METHOD_MAP = [("diary/**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None,
            "lazy_npgettext": ((1, "c"), 2, 3)}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _source_messages() -> dict[str, str]:
    found = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        ROOT, METHOD_MAP, keywords=KEYWORDS,
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
    ):
        key = message[0] if isinstance(message, tuple) else message
        if key:
            found[key] = filename
    return found


def _zh_catalogue() -> dict[str, str]:
    merged = {}
    for po in AREAS.glob("*/zh/LC_MESSAGES/messages.po"):
        with po.open("rb") as f:
            for m in read_po(f):
                if m.id and m.string and not m.fuzzy:
                    key = m.id[0] if isinstance(m.id, tuple) else m.id
                    merged[key] = m.string[0] if isinstance(m.string, tuple) else m.string
    return merged


def test_every_string_in_the_code_and_templates_has_a_chinese_translation():
    catalogue = _zh_catalogue()
    missing = {msg: where for msg, where in _source_messages().items() if msg not in catalogue}
    assert missing == {}, "untranslated (run bin/i18n-fill AREA FILE.json):\n" + "\n".join(
        f"  {where}: {msg!r}" for msg, where in sorted(missing.items()))


def test_translations_keep_every_placeholder():
    for msgid, msgstr in _zh_catalogue().items():
        assert set(PLACEHOLDER.findall(msgid)) == set(PLACEHOLDER.findall(msgstr)), msgid


def test_the_install_step_compiled_each_catalogue():
    for po in AREAS.glob("*/zh/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        assert mo.exists(), f"{mo} missing: run the install step (bin/setup)"
        with mo.open("rb") as f:
            assert len(read_mo(f)) > 0


def test_no_instruction_to_stop_tablets_could_be_read_as_stop_every_medicine():
    # Issue 10, finding 4: a participant on other medicines must never read "stop everything".
    for msgid in _source_messages():
        assert "any tablets" not in msgid and "any more tablets" not in msgid, msgid
    for msgstr in _zh_catalogue().values():
        for vague in ("不要再服药", "今天不要服用任何药片", "今天不用服药"):
            assert vague not in msgstr, msgstr


def test_a_count_of_tablets_is_always_a_singular_plural_pair():
    # "1 tablets" reads as a mistake to a participant checking their dose (issue 10, wording).
    counted = re.compile(r"%\(\w+\)[sd] tablets")
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        ROOT, METHOD_MAP, keywords=KEYWORDS,
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
    ):
        if not isinstance(message, tuple):
            assert not counted.search(message), f"{filename}: use ngettext for {message!r}"


CJK = r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]"
# A half-width , : ; ? ! ( ) next to a Chinese character, or a half-width full stop ending a Chinese
# sentence. Placeholders are masked first: "%(num)d" is code, not punctuation; "07:30" is a time.
HALF_WIDTH = re.compile(rf"(?<={CJK})[,:;?!()]|[,:;?!()](?={CJK})|(?<={CJK})\.(?=\s|$)")


def _chinese_texts():
    yield from _zh_catalogue().items()
    for name in ("study.toml", "screening.toml"):
        data = tomllib.loads((ROOT / "diary" / name).read_text(encoding="utf-8"))
        for text in data.get("advice_zh", []):
            yield name, text
        for item in data.get("symptoms", []) + data.get("criteria", []):
            yield f"{name}: {item['key']}", item.get("label_zh") or item.get("text_zh")


def test_chinese_sentences_use_full_width_punctuation():
    offending = [(where, text) for where, text in _chinese_texts()
                 if re.search(CJK, text) and HALF_WIDTH.search(PLACEHOLDER.sub("X", text))]
    assert offending == []


def test_the_half_width_check_catches_what_it_should():
    for bad in ("研究日记:您好", "服药后,请等待", "您好(患者)", "请空腹服用."):
        assert HALF_WIDTH.search(bad), bad
    for good in ("研究日记：您好", "例如 07:30。", "每片%(mg)s毫克", "（HH:MM）"):
        assert not HALF_WIDTH.search(PLACEHOLDER.sub("X", good)), good
