"""Template ids approved by the domestic providers (SMS_TEMPLATES) and what is still missing.

SMS_TEMPLATES names a TOML file with one table per provider and language:

    [tencent.zh]
    dose_reminder = "1234567"
    [aliyun.zh]
    dose_reminder = "SMS_123456789"

`flask sms templates --provider tencent --language zh` prints what to file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from diary.messaging import texts
from diary.messaging.gateway import backends

TEMPLATE_PROVIDERS = ("tencent", "aliyun")


def load_template_ids(path: str | None) -> dict[str, dict[str, dict[str, str]]]:
    """{provider: {language: {key: template id}}} from the SMS_TEMPLATES file ({} when unset)."""
    if not path:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"SMS_TEMPLATES {path!r} cannot be read: {exc}") from None
    ids: dict[str, dict[str, dict[str, str]]] = {}
    for provider, languages in data.items():
        if provider not in TEMPLATE_PROVIDERS or not isinstance(languages, dict):
            raise ValueError(f"SMS_TEMPLATES: [{provider}] is not one of {', '.join(TEMPLATE_PROVIDERS)}")
        for language, keys in languages.items():
            if language not in texts.LANGUAGES or not isinstance(keys, dict):
                raise ValueError(f"SMS_TEMPLATES: [{provider}.{language}] is not a language table")
            unknown = sorted(set(keys) - set(texts.CATALOGUE))
            if unknown:
                raise ValueError(f"SMS_TEMPLATES: [{provider}.{language}] has no such template: {', '.join(unknown)}")
            ids.setdefault(provider, {})[language] = {key: str(value) for key, value in keys.items()}
    return ids


def missing_template_ids(config: Mapping[str, Any], providers: list[str] | None = None) -> list[str]:
    """Every template a configured domestic provider (or one of `providers`) would need but has
    no id for, as readable errors naming it (start-up, the scheduler and /health)."""
    try:
        names = providers or [name for name in backends(config.get("SMS_BACKEND")) if name in TEMPLATE_PROVIDERS]
        if not names:
            return []
        ids = load_template_ids(config.get("SMS_TEMPLATES"))
    except ValueError as exc:
        return [str(exc)]
    problems = []
    for provider in names:
        for language in texts.LANGUAGES:
            have = ids.get(provider, {}).get(language, {})
            for key in texts.required_keys(config.get("SMS_LINK_BASE_URL")):
                if not have.get(key):
                    problems.append(f"SMS template {key!r} ({language}) has no {provider} template id in SMS_TEMPLATES")
    return problems


def filing_sheet(provider: str, language: str, *, link: str | None = None) -> str:
    """Every template in the provider's variable syntax, with each variable's name, meaning and
    maximum length, ready to file."""
    lines = [f"# SMS templates for {provider} ({language}); file each one, then put its id in SMS_TEMPLATES",
             f"# [{provider}.{language}]", ""]
    for key in texts.required_keys(link):
        template = texts.CATALOGUE[key]
        params = {p.name: p for p in template.params}
        lines.append(f"[{key}]")
        lines.append(texts.provider_text(key, language, provider, link=link))
        for position, name in enumerate(texts.variables(key, language), start=1):
            label = f"{{{position}}}" if provider == "tencent" else f"${{{name}}}"
            param = params[name]
            lines.append(f"  {label} {name}: {param.meaning}; at most {param.max_length(language)} characters")
        lines.append("")
    return "\n".join(lines)
