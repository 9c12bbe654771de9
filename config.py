"""Configuration read from the environment, with safe defaults for the embedded mode."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def listening_url(host: str, port: int) -> str:
    """The URL of `python app.py` listening on host:port; on every interface, its loopback one."""
    if host in {"", "0.0.0.0", "::"}:
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


SHARED_STORES = ("REDIS_URL", "DATABASE_URL")
# The settings that each give a shared store (Redis through Sentinel needs no REDIS_URL).
STORE_SETTINGS = {"REDIS_URL": ("REDIS_URL", "REDIS_SENTINELS"), "DATABASE_URL": ("DATABASE_URL",)}


def shared_stores_missing(role: str, settings) -> str | None:
    """Why a process started for ROLE (the web, the worker, an engine host) must not start,
    or None when it may. Those roles run beside one another, on one machine or many, and
    share their work only through Redis and PostgreSQL: without REDIS_URL a process would
    queue on an in-process stand-in no other process reads (sends accepted, never sent),
    without DATABASE_URL it would keep its own SQLite file. SETTINGS is the app's config or
    the environment; WAGATE_SINGLE_NODE=1 in it allows the stand-ins on purpose (a test, a
    worker run alone with --burst)."""
    if str(settings.get("WAGATE_SINGLE_NODE", "")).strip().lower() in {"1", "true", "yes", "on"}:
        return None
    missing = [name for name in SHARED_STORES if not any(settings.get(each) for each in STORE_SETTINGS[name])]
    if not missing:
        return None
    names, verb, them = (missing[0], "is", "it") if len(missing) == 1 else (" and ".join(missing), "are", "them")
    return (
        f"wagate {role}: {names} {verb} not set; roles run as separate processes share work only through "
        f"Redis (REDIS_URL) and PostgreSQL (DATABASE_URL), and without {them} this process would use its own "
        f"in-process stand-in, which no other process sees (set WAGATE_SINGLE_NODE=1 to run it alone on "
        f"purpose, or run `python app.py`, the embedded default)"
    )


class Config:
    DATA_DIR = os.environ.get("DATA_DIR", str(BASE_DIR / "data"))
    # An unset SECRET_KEY is replaced by a random key persisted under DATA_DIR (see app.py),
    # so tokens survive restarts without anyone shipping a known default.
    SECRET_KEY = os.environ.get("SECRET_KEY")

    DATABASE_URL = os.environ.get("DATABASE_URL", "")
    SQLALCHEMY_DATABASE_URI = DATABASE_URL or f"sqlite:///{Path(DATA_DIR) / 'wagate.db'}"
    # Connections kept open per process: a request or send step that finds none free opens
    # one for itself and closes it after (costly on both sides), so the pool covers the
    # threads that use the database at once (an engine host's send lines); at most
    # DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW per process, past which a request waits for
    # one (the web's requests are greenlets: as many at once as clients send). A database
    # server may drop an idle connection, so each is tested before use (not SQLite's: app.py).
    SQLALCHEMY_ENGINE_OPTIONS = {
        "pool_pre_ping": True,
        "pool_size": env_int("DATABASE_POOL_SIZE", 30),
        "max_overflow": env_int("DATABASE_MAX_OVERFLOW", 70),
        # A thread that finds every connection taken gives up after this (503) rather than
        # keep its client waiting longer than the client waits.
        "pool_timeout": env_float("DATABASE_POOL_TIMEOUT_SECONDS", 5.0),
    }
    # Bounded waits on a PostgreSQL server (app.py): connecting, and any one statement
    # (0: no limit; raise it, or set 0, for a migration of a very large table).
    DATABASE_CONNECT_TIMEOUT_SECONDS = env_int("DATABASE_CONNECT_TIMEOUT_SECONDS", 5)
    DATABASE_STATEMENT_TIMEOUT_SECONDS = env_float("DATABASE_STATEMENT_TIMEOUT_SECONDS", 30.0)
    # Without REDIS_URL the app uses an in-process Redis stand-in (embedded mode).
    REDIS_URL = os.environ.get("REDIS_URL", "")
    # Redis through Sentinel (jobs/queues.py): the Sentinels ("host:port,host:port"), the name
    # they know the primary by, and their own password if they have one. REDIS_URL then gives
    # only the database, user, password and TLS (rediss://) of the primary, or is left unset.
    REDIS_SENTINELS = os.environ.get("REDIS_SENTINELS", "")
    REDIS_SENTINEL_MASTER = os.environ.get("REDIS_SENTINEL_MASTER", "wagate")
    REDIS_SENTINEL_PASSWORD = os.environ.get("REDIS_SENTINEL_PASSWORD", "")
    # The web (wsgi.py), `flask worker` and `flask engine-host` refuse to start without
    # REDIS_URL and DATABASE_URL (shared_stores_missing) unless this is on.
    WAGATE_SINGLE_NODE = env_bool("WAGATE_SINGLE_NODE", False)
    # Bounded waits on Redis for every connection a role opens (jobs/queues.py): connecting,
    # any one command, a few quick retries of a dropped connection, and an idle connection
    # checked before it is used again.
    REDIS_CONNECT_TIMEOUT_SECONDS = env_float("REDIS_CONNECT_TIMEOUT_SECONDS", 2.0)
    REDIS_SOCKET_TIMEOUT_SECONDS = env_float("REDIS_SOCKET_TIMEOUT_SECONDS", 5.0)
    REDIS_RETRIES = env_int("REDIS_RETRIES", 2)
    REDIS_HEALTH_CHECK_SECONDS = env_int("REDIS_HEALTH_CHECK_SECONDS", 30)
    # While the database or Redis is down, requests are answered 503 with this Retry-After.
    OUTAGE_RETRY_AFTER_SECONDS = env_int("OUTAGE_RETRY_AFTER_SECONDS", 5)
    # The relay (services/messaging/relay.py, in the worker role): how often it passes, how
    # old a stored message must be before it counts as missed when Redis does not hold it,
    # and how long a message the engine host took counts as being sent.
    RELAY_INTERVAL_SECONDS = env_float("RELAY_INTERVAL_SECONDS", 2.0)
    RELAY_GRACE_SECONDS = env_float("RELAY_GRACE_SECONDS", 5.0)
    RELAY_IN_FLIGHT_SECONDS = env_float("RELAY_IN_FLIGHT_SECONDS", 60.0)

    # The delivery watchdog (services/messaging/watchdog.py, run by each engine host for the
    # sessions it holds): how often it looks, how long a message the host took may wait for
    # WhatsApp's acknowledgement and an acknowledged one for its delivery before it counts as
    # stalled (0: never), and whether one never acknowledged is queued again once (only
    # when the engine knows it cannot arrive twice).
    WATCHDOG_INTERVAL_SECONDS = env_float("WATCHDOG_INTERVAL_SECONDS", 15.0)
    WATCHDOG_ACK_SECONDS = env_float("WATCHDOG_ACK_SECONDS", 300.0)
    WATCHDOG_DELIVERY_SECONDS = env_float("WATCHDOG_DELIVERY_SECONDS", 3600.0)
    WATCHDOG_RETRY_ONCE = env_bool("WATCHDOG_RETRY_ONCE", True)
    # The deaf-session probe (roles/session_watch.py): each held session's liveness check
    # runs this often (0: never), and at once when sends acknowledged this long ago got no
    # receipt and nothing else was heard since.
    DEAF_PROBE_SECONDS = env_float("DEAF_PROBE_SECONDS", 60.0)
    DEAF_RECEIPT_SECONDS = env_float("DEAF_RECEIPT_SECONDS", 120.0)

    HOST = os.environ.get("HOST", "127.0.0.1")
    PORT = env_int("PORT", 5000)
    # Where people and phones reach this server (simulator QR links, reset links, examples).
    PUBLIC_URL = (os.environ.get("PUBLIC_URL") or listening_url(HOST, PORT)).rstrip("/")
    PROXY_FIX_X_FOR = env_int("PROXY_FIX_X_FOR", 0)

    JWT_ISSUER = "wagate"
    JWT_AUDIENCE = "wagate-api"
    JWT_EXPIRES_SECONDS = env_int("JWT_EXPIRES_SECONDS", 7 * 24 * 3600)

    DEFAULT_PLAN = os.environ.get("DEFAULT_PLAN", "free")
    # Embedded self-hosters get every feature: the first account becomes an Enterprise admin.
    FIRST_USER_IS_ADMIN = env_bool("FIRST_USER_IS_ADMIN", not DATABASE_URL)

    AUTH_RATE_LIMIT = os.environ.get("AUTH_RATE_LIMIT", "5 per 15 minutes")
    RATELIMIT_HEADERS_ENABLED = True
    # Without REDIS_URL, the in-process Redis stand-in (jobs/queues.py).
    RATELIMIT_STORAGE_URI = REDIS_URL or "stand-in://"
    # While Redis is down the limits count in this process's memory (and any other failure of
    # their store is logged), so an outage of Redis never fails a request that has nothing to do with it.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True

    WA_ENGINE = os.environ.get("WA_ENGINE", "simulator")
    ENGINE_HOST_ID = os.environ.get("ENGINE_HOST_ID", "")
    ENGINE_HOST_HEARTBEAT_SECONDS = env_float("ENGINE_HOST_HEARTBEAT_SECONDS", 5.0)
    # A host owns a session under a lease of this many seconds, renewed every third of it;
    # a host that cannot renew stops the session, and another may take it once it ran out.
    SESSION_LEASE_SECONDS = env_float("SESSION_LEASE_SECONDS", 15.0)
    # How many sessions this engine host is meant to hold: new and orphaned sessions go to
    # the host with the most room, and hosts even out their load by it.
    ENGINE_HOST_CAPACITY = env_int("ENGINE_HOST_CAPACITY", 1000)
    # Rebalancing moves at most this many sessions per heartbeat, off a host holding more
    # than its share by this fraction.
    REBALANCE_BATCH = env_int("REBALANCE_BATCH", 25)
    REBALANCE_TOLERANCE = env_float("REBALANCE_TOLERANCE", 0.1)
    # On SIGTERM a host hands its sessions to the others for at most this long before it exits.
    DRAIN_SECONDS = env_float("DRAIN_SECONDS", 30.0)
    # How long an idle in-process RQ worker (embedded mode, engine host) waits on Redis before
    # it looks again: a job wakes it at once, so this only bounds how long stopping takes.
    WORKER_POLL_SECONDS = env_float("WORKER_POLL_SECONDS", 1.0)
    QR_REFRESH_SECONDS = env_float("QR_REFRESH_SECONDS", 60.0)
    QR_MAX_REFRESHES = env_int("QR_MAX_REFRESHES", 5)
    QR_WAIT_SECONDS = env_float("QR_WAIT_SECONDS", 5.0)
    PAIR_WAIT_SECONDS = env_float("PAIR_WAIT_SECONDS", 5.0)
    # How long POST /api/sessions/{id}/pair-code waits for WhatsApp's pairing code.
    PAIR_CODE_WAIT_SECONDS = env_float("PAIR_CODE_WAIT_SECONDS", 15.0)
    SIMULATOR_TIMEOUT_SECONDS = env_float("SIMULATOR_TIMEOUT_SECONDS", 10.0)

    SIMULATOR_RECEIPT_SECONDS = env_float("SIMULATOR_RECEIPT_SECONDS", 1.0)

    # The neonize engine (WA_ENGINE=neonize): real WhatsApp through the unofficial web protocol.
    # Device stores: one schema per session in this PostgreSQL database; unset, in DATABASE_URL's
    # when it is PostgreSQL, else one SQLite file per session under DATA_DIR/engines/neonize/.
    NEONIZE_DATABASE_URL = os.environ.get("NEONIZE_DATABASE_URL", "")
    # Waits between connect attempts double from the base up to the cap (each attempt costs
    # neonize a file handle it never gives back).
    NEONIZE_RECONNECT_BASE_SECONDS = env_float("NEONIZE_RECONNECT_BASE_SECONDS", 2.0)
    NEONIZE_RECONNECT_MAX_SECONDS = env_float("NEONIZE_RECONNECT_MAX_SECONDS", 300.0)
    # Checked with a plain TCP connect before each attempt ("" to skip the check).
    NEONIZE_PROBE_ADDRESS = os.environ.get("NEONIZE_PROBE_ADDRESS", "web.whatsapp.com:443")
    # How long a starting client holds the gate alone (raise it for a slow PostgreSQL).
    NEONIZE_CONNECT_GATE_SECONDS = env_float("NEONIZE_CONNECT_GATE_SECONDS", 1.0)
    NEONIZE_CALL_TIMEOUT_SECONDS = env_float("NEONIZE_CALL_TIMEOUT_SECONDS", 30.0)
    # The name the phone lists under Linked devices.
    NEONIZE_DEVICE_NAME = os.environ.get("NEONIZE_DEVICE_NAME", "wagate")
    NEONIZE_LOG_LEVEL = os.environ.get("NEONIZE_LOG_LEVEL", "WARNING")

    # Messaging
    SEND_WAIT_SECONDS = env_float("SEND_WAIT_SECONDS", 5.0)
    # After WhatsApp answers a session's send with "overloaded", new sends on that session
    # get 503 with this Retry-After (and cost no quota) until the time has passed.
    OVERLOAD_BACKOFF_SECONDS = env_int("OVERLOAD_BACKOFF_SECONDS", 30)
    SEND_RETRY_DELAYS = [int(x) for x in env_list("SEND_RETRY_DELAYS", "5,30,120")]
    BULK_MIN_DELAY_MS = env_int("BULK_MIN_DELAY_MS", 1000)
    # The send governor's defaults for every session (each session can change its own, see
    # README "Send governor"): a gap of PACE_MIN_GAP_SECONDS plus up to PACE_JITTER_SECONDS
    # between two sends, at most PACE_PER_MINUTE a minute and PACE_PER_DAY a day, and on the
    # first days after pairing the PACE_WARMUP daily ceilings (empty: no warm-up).
    PACE_MIN_GAP_SECONDS = env_float("PACE_MIN_GAP_SECONDS", 4.0)
    PACE_JITTER_SECONDS = env_float("PACE_JITTER_SECONDS", 3.0)
    PACE_PER_MINUTE = env_int("PACE_PER_MINUTE", 12)
    PACE_PER_DAY = env_int("PACE_PER_DAY", 1000)
    PACE_WARMUP = [int(x) for x in env_list("PACE_WARMUP", "50,100,200,400,700")]
    PACE_TYPING = env_bool("PACE_TYPING", False)
    # Auto-pause: over the last GOVERNOR_WINDOW sends (once GOVERNOR_MIN_SAMPLE are in), more
    # than these shares failed / went to unknown numbers; or more than GOVERNOR_MAX_COLD_PER_DAY
    # messages in 24 h went to people who never wrote (0: not checked).
    GOVERNOR_WINDOW = env_int("GOVERNOR_WINDOW", 20)
    GOVERNOR_MIN_SAMPLE = env_int("GOVERNOR_MIN_SAMPLE", 10)
    GOVERNOR_MAX_FAILURE_RATE = env_float("GOVERNOR_MAX_FAILURE_RATE", 0.5)
    GOVERNOR_MAX_UNKNOWN_RATE = env_float("GOVERNOR_MAX_UNKNOWN_RATE", 0.3)
    GOVERNOR_MAX_COLD_PER_DAY = env_int("GOVERNOR_MAX_COLD_PER_DAY", 300)
    # Media to send: the whole fetch of a media URL must finish within this time, and a
    # send request (media inline as base64 data URLs) may be this large; other requests
    # are held to MAX_CONTENT_LENGTH.
    SEND_MAX_REQUEST_BYTES = env_int("SEND_MAX_REQUEST_BYTES", 140 * 1024 * 1024)
    # A body larger than this (or sent chunked, once past it) is read as it streams in, its
    # inline media decoded to disk on the way; at most LARGE_UPLOADS_MAX at once per process,
    # a further one waits up to LARGE_UPLOAD_WAIT_SECONDS for its turn, then is answered 503.
    LARGE_UPLOAD_BYTES = env_int("LARGE_UPLOAD_BYTES", 1024 * 1024)
    LARGE_UPLOADS_MAX = env_int("LARGE_UPLOADS_MAX", 4)
    LARGE_UPLOAD_WAIT_SECONDS = env_float("LARGE_UPLOAD_WAIT_SECONDS", 10.0)
    MEDIA_FETCH_TIMEOUT_SECONDS = env_float("MEDIA_FETCH_TIMEOUT_SECONDS", 30.0)
    BULK_MAX_CONTACTS = env_int("BULK_MAX_CONTACTS", 10000)
    # Number checks: how long an answer is reused, and how long a request waits for WhatsApp's.
    NUMBER_CHECK_CACHE_SECONDS = env_int("NUMBER_CHECK_CACHE_SECONDS", 24 * 3600)
    # Received media is kept (DATA_DIR/media/inbound, or PostgreSQL) up to this size each (bigger: noted, not kept).
    INBOUND_MEDIA_MAX_BYTES = env_int("INBOUND_MEDIA_MAX_BYTES", 100 * 1024 * 1024)
    NUMBER_CHECK_WAIT_SECONDS = env_float("NUMBER_CHECK_WAIT_SECONDS", 15.0)
    GROUP_CALL_WAIT_SECONDS = env_float("GROUP_CALL_WAIT_SECONDS", 20.0)
    BULK_WAIT_SECONDS = env_float("BULK_WAIT_SECONDS", 30.0)
    STATS_DEBOUNCE_SECONDS = env_float("STATS_DEBOUNCE_SECONDS", 5.0)
    # Server-Sent Events: how long a session's Redis stream keeps its entries (which wake the
    # streams: what they send, and resume from, is the event log's), and how often an idle
    # stream sends a heartbeat comment (proxies close silent streams).
    STREAM_RETENTION_SECONDS = env_int("STREAM_RETENTION_SECONDS", 600)
    STREAM_HEARTBEAT_SECONDS = env_float("STREAM_HEARTBEAT_SECONDS", 15.0)
    STATS_INTERVAL_SECONDS = env_float("STATS_INTERVAL_SECONDS", 300.0)
    # The event log (GET /api/events, SSE resumes) keeps events this many days, and the webhook
    # delivery log its settled deliveries this many (0: for good); the worker prunes both every
    # RETENTION_INTERVAL_SECONDS, RETENTION_BATCH rows per transaction.
    EVENT_RETENTION_DAYS = env_float("EVENT_RETENTION_DAYS", 7.0)
    WEBHOOK_LOG_RETENTION_DAYS = env_float("WEBHOOK_LOG_RETENTION_DAYS", 30.0)
    RETENTION_INTERVAL_SECONDS = env_float("RETENTION_INTERVAL_SECONDS", 3600.0)
    RETENTION_BATCH = env_int("RETENTION_BATCH", 1000)
    # Socket.IO: the server pings each client this often and drops one that has not answered
    # within the timeout after, so a vanished client holds its connection this long at most.
    SOCKETIO_PING_INTERVAL = env_float("SOCKETIO_PING_INTERVAL", 25.0)
    SOCKETIO_PING_TIMEOUT = env_float("SOCKETIO_PING_TIMEOUT", 20.0)
    # Overrides every plan's general API limit when set (plans carry their own by default).
    API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "")
    # Polling a session's status has its own limit per session, in place of the plan's.
    STATUS_RATE_LIMIT = os.environ.get("STATUS_RATE_LIMIT", "60 per minute")

    # Legacy /api/whatsapp/* scripts send no credentials: requests from these networks act
    # as the legacy owner account.
    TRUSTED_NETWORKS = env_list("TRUSTED_NETWORKS", "127.0.0.1/32,::1/128")
    LEGACY_OWNER_EMAIL = os.environ.get("LEGACY_OWNER_EMAIL", "legacy@wagate.local")
    LEGACY_OWNER_AUTO_CREATE = env_bool("LEGACY_OWNER_AUTO_CREATE", not DATABASE_URL)

    # Webhooks: seconds to wait after each failed attempt before the next; after the last,
    # the delivery is dead-lettered. A receiver's Retry-After replaces the step (capped).
    WEBHOOK_RETRY_DELAYS = [int(x) for x in env_list("WEBHOOK_RETRY_DELAYS", "60,300,1800,7200,43200")]
    WEBHOOK_RETRY_AFTER_CAP = env_int("WEBHOOK_RETRY_AFTER_CAP", 3600)
    WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0)
    # An endpoint is disabled once it has failed without a success for this long and at least
    # this many attempts in a row (so neither one burst of events nor one slow day disables it).
    WEBHOOK_DISABLE_AFTER_SECONDS = env_int("WEBHOOK_DISABLE_AFTER_SECONDS", 24 * 3600)
    WEBHOOK_MAX_CONSECUTIVE_FAILURES = env_int("WEBHOOK_MAX_CONSECUTIVE_FAILURES", 25)
    # Deliveries run on their own queue, off the default one (bulk fan-out, stats): this many
    # threads in each process that works it (`flask worker`, the embedded runtime), at most
    # WEBHOOK_ENDPOINT_CONCURRENCY attempts to one endpoint at a time.
    WEBHOOK_WORKERS = env_int("WEBHOOK_WORKERS", 8)
    WEBHOOK_ENDPOINT_CONCURRENCY = env_int("WEBHOOK_ENDPOINT_CONCURRENCY", 4)
    # How often each of those processes looks in the database for attempts that fell due
    # (retries, and deliveries whose job was lost): retries come this close to the ladder.
    WEBHOOK_POLL_SECONDS = env_float("WEBHOOK_POLL_SECONDS", 1.0)
    # URLs the server calls for users (webhooks, media) may not reach private, loopback or
    # link-local addresses unless this is on (self-hosted networks whose receivers are local).
    ALLOW_PRIVATE_URLS = env_bool("ALLOW_PRIVATE_URLS", False)
    # Or just these networks (comma-separated CIDRs, e.g. "10.0.5.0/24"), the rest still refused.
    ALLOWED_PRIVATE_NETWORKS = env_list("ALLOWED_PRIVATE_NETWORKS", "")

    # Password reset emails (forgot password works by CLI link when SMTP_HOST is empty).
    SMTP_HOST = os.environ.get("SMTP_HOST", "")
    SMTP_PORT = env_int("SMTP_PORT", 587)
    SMTP_USERNAME = os.environ.get("SMTP_USERNAME", "")
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD", "")
    SMTP_STARTTLS = env_bool("SMTP_STARTTLS", True)
    # The longest wait for the mail server (connect, then each command).
    SMTP_TIMEOUT_SECONDS = env_float("SMTP_TIMEOUT_SECONDS", 10.0)
    MAIL_FROM = os.environ.get("MAIL_FROM", "wagate <no-reply@localhost>")
    PASSWORD_RESET_MAX_AGE = env_int("PASSWORD_RESET_MAX_AGE", 3600)

    MAX_CONTENT_LENGTH = env_int("MAX_CONTENT_LENGTH", 1024 * 1024)
    # Login cookies: HttpOnly (Flask's default), SameSite=Lax, and Secure when PUBLIC_URL is
    # https (set in create_app, so a test config's PUBLIC_URL counts too).
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None  # tied to the login session instead of a clock
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    # `text` (one readable line per record) or `json` (one object per line, with the request
    # and session ids: what a log pipeline reads; services/platform/logs.py).
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")
    # Prometheus: the web answers GET /metrics only to `Authorization: Bearer <METRICS_TOKEN>`
    # (unset: not at all); the worker and the engine host serve theirs on a port of their own
    # (unset or 0: none), bound to METRICS_ADDRESS.
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
    METRICS_ADDRESS = os.environ.get("METRICS_ADDRESS", "127.0.0.1")
    WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0)
    ENGINE_HOST_METRICS_PORT = env_int("ENGINE_HOST_METRICS_PORT", 0)


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret-key-for-signing-tokens-only"
    DATABASE_URL = ""
    REDIS_URL = ""
    REDIS_SENTINELS = ""
    RATELIMIT_STORAGE_URI = "memory://"
    FIRST_USER_IS_ADMIN = False
    AUTH_RATE_LIMIT = "1000 per 15 minutes"
    WA_ENGINE = "simulator"
    QR_REFRESH_SECONDS = 60.0
    QR_WAIT_SECONDS = 5.0
    SIMULATOR_TIMEOUT_SECONDS = 1.0
    SIMULATOR_RECEIPT_SECONDS = 0.1
    ENGINE_HOST_HEARTBEAT_SECONDS = 1.0
    SESSION_LEASE_SECONDS = 3.0
    # Each test stops its runtime: a short poll makes that take a tenth of a second, not one.
    WORKER_POLL_SECONDS = 0.1
    SEND_RETRY_DELAYS = [1, 1]
    BULK_MIN_DELAY_MS = 0
    # Tests send as fast as the engine answers unless they try the governor's pace itself.
    PACE_MIN_GAP_SECONDS = 0.0
    PACE_JITTER_SECONDS = 0.0
    PACE_PER_MINUTE = 100_000
    PACE_PER_DAY = 100_000
    PACE_WARMUP: list[int] = []
    GOVERNOR_MIN_SAMPLE = 1_000_000
    GOVERNOR_MAX_COLD_PER_DAY = 0
    STATS_DEBOUNCE_SECONDS = 0.2
    # Each test's runtime: two delivery threads are enough unless a test asks for more.
    WEBHOOK_WORKERS = 2
    WEBHOOK_POLL_SECONDS = 0.2
    API_RATE_LIMIT = "100000 per 15 minutes"
    LEGACY_OWNER_AUTO_CREATE = True
