"""Firing requests at once: each in its own thread with its own test client (cookies, connection)."""

from __future__ import annotations

import threading

from sqlmodel import Session


def new_client(app):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def at_once(app, requests):
    """Run each `request(client)` in its own thread, all released together; their responses."""
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)

    def run(i, request):
        client = new_client(app)
        barrier.wait()
        try:
            results[i] = request(client)
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return results


def dispatch_outbox(app):
    """Run the outbox dispatcher once at the app's clock, as a scheduler tick does (no rate limit)."""
    from diary.scheduling.context import Jobs
    from diary.scheduling.dispatch import dispatch

    with app.app_context():
        jobs = Jobs.from_app(app, rate_per_second=0)
        with Session(app.extensions["diary.engine"], expire_on_commit=False) as s:
            return dispatch(s, jobs, app.extensions["diary.clock"]())
