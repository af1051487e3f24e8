"""The staff blueprint. Routes live in one module per area; site scope is enforced by diary.auth
(staff_required, participant_in_scope) through the look-ups in staff/common.py."""

from diary.staff import dashboard, decisions, enrolment, export, labs, participants, review  # noqa: F401 - routes
from diary.staff.common import bp

__all__ = ["bp"]
