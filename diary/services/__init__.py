"""Use cases shared by pages, SMS replies, jobs and staff corrections."""


class FieldError(ValueError):
    """Refused; `field` names the input at fault and `code` the reason (translated by the view)."""

    def __init__(self, field: str, code: str):
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code
