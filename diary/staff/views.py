"""The staff blueprint. Routes live in one module per area; site scope is enforced by diary.auth
(staff_required, participant_in_scope) through the look-ups in staff/common.py."""

from diary.staff import (  # noqa: F401 - routes
    accountability,
    admin,
    adverse_events,
    conmeds,
    contacts,
    courses,
    dashboard,
    decisions,
    deviations,
    enrolment,
    export,
    labs,
    participants,
    reports,
    review,
)
from diary.staff.common import bp

__all__ = ["bp"]
