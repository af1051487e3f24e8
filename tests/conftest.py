"""Fixtures: a fresh, migrated database per test, on SQLite and on PostgreSQL (STYLE: Flask tutorial).

Each database is copied from a template migrated once per session, so a test costs a file copy
(SQLite) or a CREATE DATABASE ... TEMPLATE (PostgreSQL), not a migration.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import create_engine, text
from sqlmodel import Session

from diary import create_app, db, migrate
from diary.auth.services import hash_secret
from diary.models import Site, StaffSite, StaffUser

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = [b for b in os.environ.get("TEST_DATABASES", "sqlite,postgresql").split(",") if b]


def pytest_addoption(parser):
    parser.addoption("--db", action="append", choices=["sqlite", "postgresql"],
                     help="Run the database-backed tests only on this backend (repeatable).")


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames and "/e2e/" not in str(metafunc.definition.path):
        chosen = metafunc.config.getoption("db") or BACKENDS
        if metafunc.definition.get_closest_marker("postgres"):
            # PostgreSQL-only behaviour (SKIP LOCKED, advisory locks): no SQLite variant to skip.
            chosen = [b for b in chosen if b == "postgresql"]
        metafunc.parametrize("backend", chosen, scope="session")


# --- database templates --------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    engine = db.make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


def _pg_admin():
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "no PostgreSQL"
        engine.dispose()
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and is unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable ({exc}); set TEST_DATABASES=sqlite to silence")
    return engine


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def pg_template():
    admin = _pg_admin()
    name = f"diary_tpl_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = db.make_engine(_pg_url(name))
    migrate.upgrade(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(backend, request, tmp_path):
    """A fresh database with the current schema, dropped after the test."""
    if backend == "sqlite":
        path = tmp_path / "diary.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    admin = _pg_admin()
    name = f"diary_t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield _pg_url(name)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def empty_database_url(backend, tmp_path):
    """A database without any tables (for migration tests), dropped after the test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    admin = _pg_admin()
    name = f"diary_e_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield _pg_url(name)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# --- the app -------------------------------------------------------------------------------


class Clock:
    """The app's clock, moved by tests instead of sleeping."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock():
    # 09:00 in Shanghai on a Tuesday, inside the trial's enrolment period.
    return Clock(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))


@pytest.fixture
def app(database_url, clock, tmp_path):
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key",
        "DATA_ENCRYPTION_KEY": "test-data-key",
        "RATELIMIT_ENABLED": False,
        "SMS_BACKEND": "console",
        "PUBLIC_BASE_URL": None,
    })
    app.extensions["diary.clock"] = clock
    yield app
    app.extensions["diary.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def session(app):
    with Session(app.extensions["diary.engine"], expire_on_commit=False) as s:
        yield s


# --- the world: two sites, staff of each role, a participant at each site ------------------

PASSWORD = "correct horse battery"
PIN = "4826"


@dataclass
class World:
    sites: dict = field(default_factory=dict)
    staff: dict = field(default_factory=dict)
    totp: dict = field(default_factory=dict)
    participants: dict = field(default_factory=dict)
    courses: dict = field(default_factory=dict)
    phones: dict = field(default_factory=dict)


@pytest.fixture
def world(app, session, clock) -> World:
    from diary.services import enrolment

    cfg = app.extensions["diary.study"]
    cipher = app.extensions["diary.cipher"]
    w = World()
    for code in ("A", "B"):
        site = Site(code=code, name=f"Site {code}", phone=f"+86-591-0000-000{len(w.sites)}",
                    on_call_phone="+8613900000000")
        session.add(site)
        session.flush()
        w.sites[code] = site
    password_hash = hash_secret(PASSWORD)
    for key, role, site in (("nurse_a", "nurse", "A"), ("investigator_a", "investigator", "A"),
                            ("nurse_b", "nurse", "B"), ("admin", "admin", None)):
        secret = pyotp.random_base32()
        staff = StaffUser(email=f"{key}@test.example", name=key, role=role,
                          password_hash=password_hash,
                          totp_secret_enc=cipher.encrypt(secret).decode())
        session.add(staff)
        session.flush()
        if site:
            session.add(StaffSite(staff_id=staff.id, site_id=w.sites[site].id))
        w.staff[key] = staff
        w.totp[key] = secret
    for key, site, phone in (("pa", "A", "+8613800001111"), ("pb", "B", "+8613800002222")):
        p = enrolment.enroll(session, cipher, site_id=w.sites[site].id, study_number=key.upper(),
                             cohort="primary", phone=phone, staff_id=w.staff["nurse_a"].id,
                             now=clock.now, language="en")
        p.pin_hash = hash_secret(PIN)
        session.add(p)
        w.participants[key] = p
        w.phones[key] = phone
        today = (clock.now + timedelta(hours=8)).date()
        w.courses[key] = enrolment.open_course(
            session, cfg, participant=p, adc_drug="trastuzumab_deruxtecan",
            infusion_date=today - timedelta(days=3), staff_id=w.staff["nurse_a"].id, now=clock.now)
    session.commit()
    return w


# --- signing in ----------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_from(client, url: str) -> str:
    html = client.get(url).get_data(as_text=True)
    match = _CSRF.search(html)
    assert match, f"no CSRF token on {url}"
    return match.group(1) or match.group(2)


@pytest.fixture
def auth(client, world, clock):
    class Auth:
        def staff(self, key: str):
            token = csrf_from(client, "/staff/login")
            r = client.post("/staff/login", data={"csrf_token": token, "email": f"{key}@test.example",
                                                  "password": PASSWORD})
            assert r.status_code == 302, r.get_data(as_text=True)
            code = pyotp.TOTP(world.totp[key]).at(clock.now)
            token = csrf_from(client, "/staff/login/code")
            r = client.post("/staff/login/code", data={"csrf_token": token, "code": code})
            assert r.status_code == 302 and "/staff" in r.headers["Location"], r.get_data(as_text=True)
            return r

        def participant(self, key: str, pin: str = PIN):
            token = csrf_from(client, "/login")
            return client.post("/login", data={"csrf_token": token, "phone": world.phones[key], "pin": pin})

        def csrf(self, url: str = "/login") -> str:
            return csrf_from(client, url)

    return Auth()
