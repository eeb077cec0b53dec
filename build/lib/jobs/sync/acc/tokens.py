"""The OAuth token of one `acc` remote, kept alive for a run.

APS refresh tokens are single-use: of two refreshes a moment apart (two workers running jobs of the same
resource), the second fails and the remote is dead until a user signs in again. So a refresh happens under a
Redis lock named after the remote, shared by every worker; under the lock we first re-read the stored token
(another worker may have just refreshed it) and send a refresh token only if it is still the stored one; the
new token is stored, encrypted, before the lock is released.
"""

import json
import logging
import threading
from datetime import UTC, datetime, timedelta

import requests
from django.conf import settings
from django.db import connection

from configs.services import remotes_for_run, store_refreshed_token
from jobs.sync.acc.client import ApsError, parse_time
from pointscene.core.connections import redis_client

log = logging.getLogger(__name__)

# Refresh a little before expiry, so a request does not leave with a token that dies on the way.
EARLY_SECONDS = 120
LOCK_SECONDS = 60


class StoredToken:
    def __init__(
        self,
        resource_id: int,
        remote: str,
        token_json: str,
        *,
        client_id: str = "",
        client_secret: str = "",
        base_url: str | None = None,
        session: requests.Session | None = None,
        on_refresh=None,
    ) -> None:
        self.resource_id = resource_id
        self.remote = remote
        self.token_json = token_json
        self.client_id = client_id or settings.APS_CLIENT_ID
        self.client_secret = client_secret or settings.APS_CLIENT_SECRET
        self.base_url = (base_url or settings.APS_BASE_URL).rstrip("/")
        self.session = session or requests.Session()
        self.on_refresh = on_refresh
        self.refreshes = 0

    @property
    def token(self) -> dict:
        return json.loads(self.token_json)

    def _expiring(self, token: dict) -> bool:
        expiry = parse_time(token.get("expiry"))
        return expiry is None or expiry <= datetime.now(UTC) + timedelta(seconds=EARLY_SECONDS)

    def access_token(self) -> str:
        token = self.token
        if self._expiring(token):
            return self.refresh(token.get("access_token", ""))
        return token["access_token"]

    def refresh(self, rejected: str) -> str:
        """A fresh access token, given that `rejected` is expired or was refused."""
        key = f"{settings.JOBS_REDIS_PREFIX}acc-token:{self.resource_id}:{self.remote}"
        try:
            with redis_client().lock(key, timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS * 2):
                return self._refresh_under_lock(rejected)
        finally:
            # Refreshes run on the bridge's request threads, each with a database connection of its own that
            # nothing else would close.
            if threading.current_thread() is not threading.main_thread():
                connection.close()

    def _refresh_under_lock(self, rejected: str) -> str:
        stored = remotes_for_run(self.resource_id, [self.remote]).get(self.remote)
        if stored is None:
            raise ApsError(0, "REMOTE_REMOVED", f"remote {self.remote!r} was removed during the run")
        if stored.get("token") and stored["token"] != self.token_json:
            # Someone refreshed (or a user stored a new token) since we read it: use theirs if it is good.
            self.token_json = stored["token"]
            token = self.token
            if token.get("access_token") != rejected and not self._expiring(token):
                return token["access_token"]
        return self._refresh_locked()

    def _refresh_locked(self) -> str:
        old = self.token
        if not old.get("refresh_token"):
            raise ApsError(401, "NO_REFRESH_TOKEN", "the ACC token expired and has no refresh token; store a new one")
        if not self.client_id:
            raise ApsError(401, "NO_CLIENT_ID", "refreshing an ACC token needs client_id (remote or APS_CLIENT_ID)")
        try:
            response = self.session.post(
                f"{self.base_url}/authentication/v2/token",
                data={"grant_type": "refresh_token", "refresh_token": old["refresh_token"]},
                auth=(self.client_id, self.client_secret),
                timeout=(10, 60),
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ApsError(
                0, "CONNECTION_FAILED", f"{type(exc).__name__} refreshing the ACC token", retryable=True
            ) from None
        if response.status_code != 200:
            # Not retried: sending the same refresh token twice is what single-use tokens punish.
            try:
                body = response.json()
            except ValueError:
                body = {}
            code = str(body.get("errorCode") or body.get("error") or "")
            detail = str(body.get("developerMessage") or body.get("error_description") or response.reason)
            raise ApsError(
                response.status_code,
                code,
                f"refreshing the ACC token failed: {detail[:300]}",
                retryable=response.status_code >= 500,
            )
        body = response.json()
        expires_in = int(body.get("expires_in") or 3599)
        new = {
            "access_token": body["access_token"],
            "token_type": body.get("token_type") or "Bearer",
            "refresh_token": body.get("refresh_token") or old["refresh_token"],
            "expiry": (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat().replace("+00:00", "Z"),
            "expires_in": expires_in,
        }
        new_json = json.dumps(new, separators=(",", ":"))
        stored = store_refreshed_token(self.resource_id, self.remote, self.token_json, new_json)
        if not stored:
            log.warning(
                "acc remote %s of resource %s: refreshed, but the remote changed meanwhile",
                self.remote,
                self.resource_id,
            )
        self.token_json = new_json
        self.refreshes += 1
        if self.on_refresh:
            self.on_refresh(stored)
        return new["access_token"]
