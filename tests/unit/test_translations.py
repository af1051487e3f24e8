"""Every participant- and staff-facing string has a Simplified Chinese translation."""

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
AREAS = ROOT / "diary" / "translations"
METHOD_MAP = [("diary/**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
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
