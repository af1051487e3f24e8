"""Shared steps for the participant web tests: sign in, post a form, read the records."""

from __future__ import annotations

import re
import uuid

from sqlmodel import select

from diary.models import DoseLog

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(client, url: str = "/") -> str:
    html = client.get(url).get_data(as_text=True)
    match = _TOKEN.search(html)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def day_url(world, key: str, day: int, action: str = "") -> str:
    url = f"/courses/{world.courses[key].id}/days/{day}"
    return f"{url}/{action}" if action else url


def post(client, url: str, token: str, htmx: bool = False, **data):
    data.setdefault("client_key", uuid.uuid4().hex)
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(url, data={"csrf_token": token, **data}, headers=headers)


def logs(session, course_id: int | None = None) -> list[DoseLog]:
    session.expire_all()
    query = select(DoseLog).order_by(DoseLog.id)
    if course_id is not None:
        query = query.where(DoseLog.course_id == course_id)
    return list(session.exec(query).all())
