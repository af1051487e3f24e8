"""The baseline for bench/checkoff.py: the framework work of a check-off and nothing more.

A bare Flask app under the same gunicorn: it checks the signed session and the CSRF token
(Flask-WTF, as the diary does), does one INSERT, and renders a 3 KB fragment. Whatever the diary
spends beyond this on a check-off is its own. Run by bench/checkoff.py; not part of the product.

    BASELINE_DATABASE_URL=postgresql+psycopg://… gunicorn -w 2 bench.baseline_app:app
"""

from __future__ import annotations

import os

from flask import Flask, abort, render_template_string, session
from flask_wtf.csrf import CSRFProtect, generate_csrf
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, func, insert

app = Flask(__name__)
app.config.update(SECRET_KEY=os.environ.get("BASELINE_SECRET_KEY", "baseline-secret"), WTF_CSRF_TIME_LIMIT=None)
CSRFProtect(app)
# No check of a pooled connection before use: the diary's own (a socket poll, diary/db.py) is
# counted against the diary, never the baseline.
engine = create_engine(os.environ["BASELINE_DATABASE_URL"])
metadata = MetaData()
checks = Table("bench_baseline_check", metadata, Column("id", Integer, primary_key=True),
               Column("who", String(32)), Column("kind", String(16)), Column("at", DateTime, server_default=func.now()))

# A fragment of the size of the diary's day card (3 KB), with the CSRF token in it.
FRAGMENT = """<section class="card" id="today"><h2>Today · day {{ day }}</h2>
<form method="post" action="/taken"><input type="hidden" name="csrf_token" value="{{ csrf }}">
<button class="big">I took it</button></form>{% for n in range(24) %}
<p class="line">Take 2 tablets (5 mg) with water, on an empty stomach; {{ n }} of 24 lines of card text.</p>{% endfor %}
</section>"""


@app.get("/signin/<who>")
def sign_in(who: str):
    session["who"] = who[:32]
    return "ok"


@app.get("/")
def today():
    if "who" not in session:
        abort(401)
    return render_template_string(FRAGMENT, day=3, csrf=generate_csrf())


@app.post("/<kind>")
def check(kind: str):
    if "who" not in session or kind not in ("taken", "undo"):
        abort(401)
    with engine.begin() as conn:
        conn.execute(insert(checks).values(who=session["who"], kind=kind))
    return render_template_string(FRAGMENT, day=3, csrf=generate_csrf())


def create_table() -> None:
    metadata.create_all(engine)
