"""Superset configuration for the local, offline Superset (loaded through SUPERSET_CONFIG_PATH).

Everything Superset keeps lives under LAKEHOUSE_SUPERSET_HOME (lakehouse/analytics/superset.py sets it; by
default .lakehouse/superset in the repository). Nothing here makes an outbound call: SQLite
metadata, in-process caches, and a Content-Security-Policy that only allows this origin, which
also stops the browser from fetching the frontend's telemetry pixel. In AWS the same Superset
runs with its metadata in RDS and its secret from Secrets Manager, passed through the same
environment variables.
"""
import os
from pathlib import Path

HOME = Path(os.environ.get("LAKEHOUSE_SUPERSET_HOME") or Path(__file__).resolve().parent.parent / ".lakehouse" / "superset")
DATA_DIR = str(HOME)

# An obviously fake default for a machine-local Superset; any shared deployment must set the variable.
SECRET_KEY = os.environ.get("SUPERSET_SECRET_KEY") or "local-only-not-a-secret-lakehouse-superset"
SQLALCHEMY_DATABASE_URI = os.environ.get("SUPERSET_METADATA_URI") or f"sqlite:///{HOME / 'superset.db'}?check_same_thread=false"

# No Redis: caches in process. No result cache, so a chart always shows the current serving file.
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
FILTER_STATE_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache"}
EXPLORE_FORM_DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache"}
RATELIMIT_STORAGE_URI = "memory://"

WTF_CSRF_ENABLED = True
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,  # served on 127.0.0.1 only; TLS ends at the load balancer in AWS
    "session_cookie_secure": False,
}
# no third-party font or map hosts: the theme uses the fonts bundled with the frontend
THEME_FONT_URL_ALLOWED_DOMAINS: list[str] = []
MAPBOX_API_KEY = ""
