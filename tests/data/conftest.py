"""Fixtures shared by this folder's tests."""

from tests.audit_anchors import _own_audit_anchor_file  # noqa: F401 - an autouse fixture
