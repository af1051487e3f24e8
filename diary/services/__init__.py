"""Use cases shared by pages, SMS replies, jobs and staff corrections."""


class FieldError(ValueError):
    """Refused; `field` names the input at fault and `code` the reason (translated by the view).
    `details` are what the sentence names, e.g. the quiet hours a reminder time falls in."""

    def __init__(self, field: str, code: str, **details):
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code
        self.details = details
