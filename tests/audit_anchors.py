"""Each test's audit checkpoints go to a file of its own.

The app is reused across a worker's tests (tests/conftest.py), so without this every test would
append checkpoints of its own database to one shared file, and the next test's `audit verify`
would compare its trail with another database's chains. Imported by each test folder's conftest.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _own_audit_anchor_file(request):
    if "app" in request.fixturenames:
        app = request.getfixturevalue("app")
        app.config["AUDIT_ANCHOR_PATH"] = str(request.getfixturevalue("tmp_path") / "audit-anchors.jsonl")
