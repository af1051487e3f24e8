"""Use cases shared by pages, SMS replies, jobs and staff corrections.

They take the session and only flush: the caller owns the transaction (a request's unit of work,
diary/db.py; the scheduler's or a CLI command's own commit). A refusal (a FieldError or a use
case's own error) is raised before anything is written, or from inside the `begin_nested()` that
wrote it, so a refused call changes nothing even when the page answers it with a redirect. Make the
change inside the savepoint: `begin_nested()` first flushes what is pending, outside it, where a
unique key that fails breaks the whole transaction instead of refusing one step.
"""


class FieldError(ValueError):
    """Refused; `field` names the input at fault and `code` the reason (translated by the view).
    `details` are what the sentence names, e.g. the quiet hours a reminder time falls in."""

    def __init__(self, field: str, code: str, **details):
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code
        self.details = details
