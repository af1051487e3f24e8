"""The web tier's clock: an adapter so tests can move time instead of sleeping."""

from datetime import datetime

from flask import current_app

from diary.sqltypes import utc_now


def now() -> datetime:
    """The current instant (UTC); tests replace app.extensions['diary.clock']."""
    return current_app.extensions.get("diary.clock", utc_now)()
