"""Extensions created once at import and bound to an app in create_app() (Flask tutorial style)."""

from flask_babel import Babel
from flask_compress import Compress
from flask_htmx import HTMX
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
htmx = HTMX()
# Counters live in RATELIMIT_STORAGE_URI (Redis in production), so every worker shares them.
limiter = Limiter(key_func=get_remote_address, default_limits=[])
# gzip and brotli in the app itself, so that gunicorn without a proxy sends small pages (issue 14).
compress = Compress()
