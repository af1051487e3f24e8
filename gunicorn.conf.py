"""Read by gunicorn from the working directory: its own lines (start, workers, timeouts) go through
the app's root handler and format (diary/logs.py), so one log holds one format.

The app is built once, in the master, and the workers are forked from it (preload_app): wsgi.py
freezes what start-up made (diary.settle, gc.freeze) before the fork, so the workers share those
pages instead of each building and holding its own copy. Measured with bench/checkoff.py's load
(issue 15): each worker's RSS after the load 93 MiB instead of 100, its PSS 57 instead of 69.
A code change therefore needs a restart of gunicorn, not a HUP (which only re-forks workers)."""

from gunicorn.glogging import Logger

from diary.logs import gunicorn_logconfig


class DiaryGunicornLogger(Logger):
    """gunicorn's access line only when one is asked for (--access-logfile). The app writes its
    own access line, with the endpoint and never the path (diary/logs.py); but because the
    logging configuration comes from logconfig_dict, gunicorn would otherwise build its line
    (with the raw path) for every request and drop it: ~3 % of a check-off's work (issue 15)."""

    @property
    def access_log_enabled(self) -> bool:
        return bool(self.cfg.accesslog)

    def access(self, resp, req, environ, request_time) -> None:
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


logconfig_dict = gunicorn_logconfig()
logger_class = DiaryGunicornLogger
preload_app = True
