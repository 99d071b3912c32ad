"""Superset configuration in AWS (SUPERSET_CONFIG_PATH of the image built from dashboards/image/Dockerfile).

It starts from the local configuration (dashboards/superset_config.py, copied into the image as
lakehouse_base_config.py): the same Content-Security-Policy, no third-party hosts, CSRF on. What differs in AWS,
all from the environment the task definition sets (cdk_app/dashboards.py), secrets from Secrets Manager:
- the metadata database: RDS PostgreSQL, its password from the database's generated secret;
- SECRET_KEY: required, with no fallback;
- caches: Superset's cache on the metadata database, shared by every task (no Redis to pay for);
- sign-in, when the load balancer has HTTPS: OIDC (the stack's Cognito user pool, or the provider of cdk.json's
  `dashboards.oidc`) with Superset roles mapped from the provider's groups claim; otherwise database sign-in
  with the bootstrap admin (docs/dashboards.md);
- behind the load balancer: ProxyFix, secure cookies under HTTPS.
"""
from __future__ import annotations

import json
import os
from typing import Any

from flask_appbuilder.security.manager import AUTH_DB, AUTH_OAUTH
from sqlalchemy.engine import URL
from superset.security import SupersetSecurityManager

from lakehouse_base_config import *  # noqa: F401,F403  (the local configuration, see above)
from lakehouse_base_config import TALISMAN_CONFIG

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
SQLALCHEMY_DATABASE_URI = URL.create(
    "postgresql+psycopg2",
    username=os.environ["DATABASE_USER"],
    password=os.environ["DATABASE_PASSWORD"],
    host=os.environ["DATABASE_HOST"],
    port=int(os.environ["DATABASE_PORT"]),
    database=os.environ["DATABASE_DB"],
).render_as_string(hide_password=False)

# One cache every task shares, in the metadata database. Chart data is kept for 10 minutes; Athena's result reuse
# (the database URI) saves the scans of identical queries across the tasks' caches.
_METASTORE = "SupersetMetastoreCache"
CACHE_CONFIG = {"CACHE_TYPE": _METASTORE, "CACHE_DEFAULT_TIMEOUT": 300, "CACHE_KEY_PREFIX": "superset_"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": _METASTORE, "CACHE_DEFAULT_TIMEOUT": 600, "CACHE_KEY_PREFIX": "data_"}
FILTER_STATE_CACHE_CONFIG = {"CACHE_TYPE": _METASTORE, "CACHE_DEFAULT_TIMEOUT": 86400}
EXPLORE_FORM_DATA_CACHE_CONFIG = {"CACHE_TYPE": _METASTORE, "CACHE_DEFAULT_TIMEOUT": 86400}

# The load balancer sets X-Forwarded-For/-Proto/-Host: URLs and redirects use the public scheme and host.
ENABLE_PROXY_FIX = True
HTTPS = os.environ.get("PUBLIC_SCHEME") == "https"
SESSION_COOKIE_SECURE = HTTPS
TALISMAN_CONFIG = {**TALISMAN_CONFIG, "session_cookie_secure": HTTPS}

OIDC_PROVIDER = "oidc"
if os.environ.get("AUTH_MODE") == "oidc":
    AUTH_TYPE = AUTH_OAUTH
    # a provider of your own (cdk.json dashboards.oidc) has a client secret; the stack's Cognito client has none
    _SECRET = {"client_secret": os.environ["OIDC_CLIENT_SECRET"]} if os.environ.get("OIDC_CLIENT_SECRET") else {}
    OAUTH_PROVIDERS = [{
        "name": OIDC_PROVIDER,
        "icon": "fa-sign-in",
        "token_key": "access_token",
        "remote_app": {
            "client_id": os.environ["OIDC_CLIENT_ID"],
            **_SECRET,
            # PKCE in any case; the Cognito client is public, with no secret to keep (decision 0310)
            "client_kwargs": {"scope": "openid email profile", "code_challenge_method": "S256"},
            "server_metadata_url": os.environ["OIDC_METADATA_URL"],
        },
    }]
    # {provider group: [Superset role]}; the groups are made with the user pool (cdk_app/dashboards.py)
    AUTH_ROLES_MAPPING: dict[str, list[str]] = json.loads(os.environ["AUTH_ROLES_MAPPING"])
    AUTH_ROLES_SYNC_AT_LOGIN = True  # a group change counts at the next sign-in
    AUTH_USER_REGISTRATION = True
    AUTH_USER_REGISTRATION_ROLE = "Gamma"  # signed in, in no group: may only view what it is granted
else:
    AUTH_TYPE = AUTH_DB


class GroupsSecurityManager(SupersetSecurityManager):
    """Reads the user from the ID token's claims (Authlib checks its signature against the provider's keys) and
    the groups from OIDC_GROUPS_CLAIM (`cognito:groups` for a Cognito user pool)."""

    def get_oauth_user_info(self, provider: str, resp: dict[str, Any]) -> dict[str, Any]:
        if provider != OIDC_PROVIDER:
            return super().get_oauth_user_info(provider, resp)
        claims = resp.get("userinfo") or {}
        groups = claims.get(os.environ.get("OIDC_GROUPS_CLAIM", "cognito:groups")) or []
        return {
            "username": claims.get("email") or claims["sub"],
            "email": claims.get("email", ""),
            "first_name": claims.get("given_name", ""),
            "last_name": claims.get("family_name", ""),
            "role_keys": list(groups) if isinstance(groups, list) else [groups],
        }


CUSTOM_SECURITY_MANAGER = GroupsSecurityManager
