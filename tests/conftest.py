"""Fixtures: a fresh, migrated database per test, on SQLite and on PostgreSQL (STYLE: Flask tutorial).

Each database is copied from a template migrated once per session, so a test costs a file copy
(SQLite) or a CREATE DATABASE ... TEMPLATE (PostgreSQL), not a migration.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from jinja2 import BytecodeCache
from sqlalchemy import create_engine, event, text
from sqlmodel import Session

from diary import audit, create_app, db, migrate
from diary.auth.services import configure_hasher, hash_secret
from diary.extensions import limiter
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
            if "postgresql" not in chosen:
                # Not a skip: this run did not ask for PostgreSQL (--db sqlite, bin/test --fast).
                metafunc.parametrize("backend", [pytest.param("postgresql", marks=_NOT_CHOSEN)], scope="session")
                return
            chosen = ["postgresql"]
        elif metafunc.definition.get_closest_marker("any_db"):
            # Access rules, page text, pure rules: the database cannot change the outcome, so one
            # backend (the embedded default, when it is chosen) is enough.
            chosen = ["sqlite"] if "sqlite" in chosen else chosen[:1]
        metafunc.parametrize("backend", chosen, scope="session")


_NOT_CHOSEN = pytest.mark.backend_not_chosen


def pytest_collection_modifyitems(config, items):
    unwanted = [item for item in items if item.get_closest_marker("backend_not_chosen")]
    if unwanted:
        config.hook.pytest_deselected(items=unwanted)
        items[:] = [item for item in items if not item.get_closest_marker("backend_not_chosen")]


# --- database templates --------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(scratch_dir):
    path = scratch_dir / "template.sqlite3"
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
    # A test database is thrown away after the test: no need to wait for each commit's WAL flush.
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name + "?options=-c%20synchronous_commit%3Doff"


@pytest.fixture(scope="session")
def scratch_dir(tmp_path_factory):
    """Where SQLite test databases live: memory-backed when the machine has /dev/shm, so that a
    commit's fsync costs nothing (the databases are thrown away; durability is not under test)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        path = Path(tempfile.mkdtemp(prefix="diary-tests-", dir=shm))
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield tmp_path_factory.mktemp("databases")


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
        path = request.getfixturevalue("scratch_dir") / f"{uuid.uuid4().hex}.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        for leftover in path.parent.glob(path.name + "*"):  # the database, its -wal and -shm
            leftover.unlink(missing_ok=True)
        return
    template = request.getfixturevalue("pg_template")
    admin, drop_later = request.getfixturevalue("pg_admin")
    name = f"diary_t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield _pg_url(name)
    drop_later(name)


@pytest.fixture(scope="session")
def pg_admin():
    """The server's admin connection, and a way to drop a used database in the background (a drop
    takes as long as a test's set-up; the next test need not wait for it). All are gone at the end."""
    admin = _pg_admin()
    dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-test-db")

    def drop(name: str) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    yield admin, lambda name: dropper.submit(drop, name)
    dropper.shutdown(wait=True)
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


class MemoryBytecodeCache(BytecodeCache):
    """Jinja's bytecode cache, in memory (its FileSystemBytecodeCache would outlive the run)."""

    def __init__(self):
        self._store: dict[str, bytes] = {}

    def load_bytecode(self, bucket):
        code = self._store.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket):
        self._store[bucket.key] = bucket.bytecode_to_string()


# argon2 at its production cost (64 MiB, 3 passes) takes ~0.1 s a hash; tests hash and verify
# thousands of times, and the cost parameters travel inside each hash, so cheap ones are safe here.
# tests/unit/test_config.py proves that production keeps the strong defaults.
CHEAP_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 8, "ARGON2_PARALLELISM": 1}
configure_hasher(time_cost=1, memory_kib=8, parallelism=1)

# Every test builds its own app, and each app would compile every template it renders again; the
# compiled code depends only on the template source, so all test apps share one bytecode cache.
_TEMPLATE_BYTECODE = MemoryBytecodeCache()


def make_test_app(database_url: str, **overrides):
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key",
        "DATA_ENCRYPTION_KEY": "test-data-key",
        "RATELIMIT_ENABLED": False,
        "SMS_BACKEND": "console",
        "PUBLIC_BASE_URL": None,
        **CHEAP_ARGON2,
        **overrides,
    })
    app.jinja_env.bytecode_cache = _TEMPLATE_BYTECODE
    return app


@pytest.fixture(scope="session")
def _built_apps():
    """Per backend: an app, and its configuration and extensions as create_app left them."""
    return {}


@pytest.fixture
def app(backend, database_url, clock, tmp_path, _built_apps):
    """The app, bound to this test's own database.

    Building an app costs tens of milliseconds (compiling every URL rule), so each worker builds
    one per backend and reuses it, putting its configuration and extensions back as create_app
    left them before every test: a setting or a gateway one test changes never reaches the next.
    A test that needs create_app itself (other settings at start-up) calls make_test_app.
    """
    if backend not in _built_apps:
        built = make_test_app(database_url)
        built.extensions.pop("diary.engine").dispose()
        _built_apps[backend] = (built, dict(built.config), dict(built.extensions))
    app, config, extensions = _built_apps[backend]
    app.config.clear()
    # The audit trail's checkpoints are anchored in a file: each test's database gets its own.
    app.config.update(config, DATABASE_URL=database_url, AUDIT_ANCHOR_PATH=str(tmp_path / "audit-anchors.jsonl"))
    app.extensions.clear()
    app.extensions.update(extensions)
    app.extensions["diary.engine"] = db.make_engine(database_url)
    app.extensions["diary.clock"] = clock
    # Process-wide settings that create_app sets, and that an app built by another test (rate
    # limits on, production keys and hashing) may have changed: set them as create_app would.
    limiter.enabled = app.config["RATELIMIT_ENABLED"]
    audit.configure(app.extensions["diary.audit_key"])  # fixtures record events outside a request
    configure_hasher(time_cost=1, memory_kib=8, parallelism=1)
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
# Hashed once per session: every world has the same staff password and participant PIN.
PASSWORD_HASH = hash_secret(PASSWORD)
PIN_HASH = hash_secret(PIN)


@dataclass
class World:
    sites: dict = field(default_factory=dict)
    staff: dict = field(default_factory=dict)
    totp: dict = field(default_factory=dict)
    participants: dict = field(default_factory=dict)
    courses: dict = field(default_factory=dict)
    phones: dict = field(default_factory=dict)


@pytest.fixture
def statements(app):
    """Every SQL statement the app sends while the test runs (request budgets, issue 15)."""
    seen: list[str] = []
    engine = app.extensions["diary.engine"]

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


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
    password_hash = PASSWORD_HASH
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
        p.pin_hash = PIN_HASH
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


_TAKEN_FORM = re.compile(r'action="(/courses/\d+/days/\d+)/taken"')


def check_off_form(html: str) -> tuple[str, str]:
    """From a today page: its day's form path ("/courses/1/days/3", to which "/taken" and "/undo"
    are added) and the page's CSRF token."""
    match, token = _TAKEN_FORM.search(html), _CSRF.search(html)
    assert match and token, "no check-off form on the page"
    return match.group(1), token.group(1) or token.group(2)


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


_TAG = re.compile(r"<[^>]*>")


def mentions(page: str | bytes, word: str) -> bool:
    """Whether `word` is shown on `page` as a word of its own (a study number, a name): tags and
    their attributes (the random CSRF token, URLs) are left out, so "PA" inside a token is not it."""
    text = page.decode("utf-8", "replace") if isinstance(page, bytes) else page
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(word)}(?![A-Za-z0-9])", _TAG.sub(" ", text)) is not None
