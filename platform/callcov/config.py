"""Settings, read from the environment (``CALLCOV_<GROUP>__<FIELD>``), with embedded-mode defaults."""

from __future__ import annotations

import enum
import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, IPvAnyNetwork, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changethis", "change-me-in-production-0123456789abcdef"}
# Published in this repository: anyone can sign a JWT with it. It serves loopback only (`check_bind`).
DEV_SECRET = "change-me-in-production-0123456789abcdef"
MIN_SECRET_LENGTH = 32


class InsecureBind(ValueError):
    """The development secrets on an address that others can reach."""


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a bind address or the address a connection arrived on) is loopback only."""
    if not host:
        return False
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _weak(secret: str) -> bool:
    return secret in PLACEHOLDER_SECRETS or len(secret) < MIN_SECRET_LENGTH


class Environment(enum.StrEnum):
    development = "development"
    testing = "testing"
    staging = "staging"
    production = "production"

    @property
    def is_local(self) -> bool:
        """A laptop or the test suite, never real users: one-time codes may be kept and logged in
        the clear (the README has a local user copy the code from the log)."""
        return self in (Environment.development, Environment.testing)


def default_data_dir() -> Path:
    return Path.cwd() / "var"


class DatabaseSettings(BaseModel):
    # Empty means the embedded SQLite file under the data directory.
    url: str = ""
    echo: bool = False
    # Connections of one process (one Serve replica): pool_size kept open, up to max_overflow more under
    # load. On a cluster, `python -m deployments.deploy` sizes them per replica from the budget below.
    pool_size: int = Field(default=10, ge=1)
    max_overflow: int = Field(default=20, ge=0)
    # The server's max_connections, and how many of them stay free for others (migrations, psql,
    # PostgreSQL's superuser_reserved_connections): the rest is shared by every replica's pool.
    max_connections: int = Field(default=100, ge=1)
    reserved_connections: int = Field(default=10, ge=0)

    @property
    def connection_budget(self) -> int:
        return self.max_connections - self.reserved_connections

    def resolved_url(self, data_dir: Path) -> str:
        if not self.url:
            return f"sqlite+aiosqlite:///{(data_dir / 'callcov.db').resolve()}"
        url = self.url
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
        return url


class RedisSettings(BaseModel):
    # Empty means no Redis: rate limits are counted in-process.
    url: str = ""
    key_prefix: str = "callcov:"


class AuthSettings(BaseModel):
    jwt_secret: str = DEV_SECRET
    api_key_pepper: str = DEV_SECRET
    jwt_algorithm: str = "HS256"
    access_token_ttl_s: int = 30 * 60
    refresh_token_ttl_s: int = 7 * 24 * 3600
    email_token_ttl_s: int = 15 * 60
    resend_verification_per_hour: int = 3
    # Password-reset links that may be open at once: a new request keeps the earlier ones (up to
    # this many, the oldest revoked first), so requests made by someone else cannot kill a link.
    open_reset_links: int = Field(default=3, ge=1)
    # Password-reset emails per address and hour; beyond, the request is answered alike but sends
    # nothing (and so revokes no earlier link).
    password_reset_per_hour: int = 3
    max_active_api_keys: int = 10
    # last_used_at is written at most this often per key, to keep reads cheap.
    last_used_resolution_s: int = 60


class EmailSettings(BaseModel):
    # "outbox": store and log each message (embedded default); "smtp": also send through SMTP.
    backend: str = Field(default="outbox", pattern="^(outbox|smtp)$")
    from_address: str = "CallCov <no-reply@callcov.local>"
    frontend_url: str = "http://localhost:8000"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_timeout_s: float = 10.0
    # `callcov prune` deletes outbox messages older than this (sent or not).
    outbox_retention_s: int = Field(default=7 * 24 * 3600, ge=0)


class RateLimitSettings(BaseModel):
    enabled: bool = True
    window_s: int = 60
    default_per_window: int = 100
    submissions_per_window: int = 20
    # POST /auth/* per client address (the default limit when that is lower).
    auth_per_window: int = 20
    # Per-plan overrides, e.g. {"growth": {"default": 300, "submissions": 60}}.
    plans: dict[str, dict[str, int]] = Field(default_factory=dict)
    # Proxies whose X-Forwarded-For is believed (CIDRs, e.g. ["10.0.0.0/8"]): unauthenticated requests
    # are counted per client address, the right-most one a trusted proxy did not add. Empty: the peer.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    # Failed logins per email before a lockout (0: no lockout); the lockout doubles from
    # login_lockout_s with each further failure, up to login_lockout_max_s.
    login_free_attempts: int = Field(default=5, ge=0)
    login_lockout_s: int = Field(default=60, ge=1)
    login_lockout_max_s: int = Field(default=3600, ge=1)


class IdempotencySettings(BaseModel):
    ttl_s: int = 24 * 3600
    # A key held by a request that never finished (crashed process) is released after this long.
    lock_timeout_s: int = 300
    max_key_length: int = 255


class StorageSettings(BaseModel):
    # "local": files under `root`; "s3": an S3-compatible bucket (credentials from the standard AWS
    # environment variables or instance role, never from settings files), with a local copy in `root`.
    backend: str = Field(default="local", pattern="^(local|s3)$")
    # Where audio (or, with s3, its local copies) is kept; empty means ``<data_dir>/audio``.
    root: str = ""
    s3_bucket: str = ""
    s3_prefix: str = "audio/"
    s3_endpoint_url: str = ""
    s3_region: str = ""
    max_upload_bytes: int = 500 * 1024 * 1024
    # Every request body but an audio upload (multipart to the submission paths).
    max_body_bytes: int = 1024 * 1024
    # Request bodies bigger than this are spooled to disk instead of memory.
    spool_memory_bytes: int = 1024 * 1024
    download_timeout_s: float = 120.0
    # With `redact_audio`, whether the original recording is kept once its bleeped copy exists (false:
    # deleted after the transcription stage; GET /analysis/{id}/audio serves the bleeped copy either way).
    keep_original_audio: bool = True

    @model_validator(mode="before")
    @classmethod
    def _url_allow_moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and "url_allow" in data:
            raise ValueError("storage.url_allow is now network.url_allow (CALLCOV_NETWORK__URL_ALLOW)")
        return data


class NetworkSettings(BaseModel):
    """Outbound requests to user-supplied URLs (audio_url downloads, webhook deliveries)."""

    # Networks that audio_url and webhook_url may reach although private (local development and
    # tests only), e.g. ["127.0.0.0/8"]. Empty in production.
    url_allow: list[str] = Field(default_factory=list)
    # How long resolving a URL's host may take when it is checked at submission.
    dns_timeout_s: float = 10.0


class InferenceSettings(BaseModel):
    # The Serve application that transcribes (called through a handle by the dispatcher).
    whisper_app: str = "whisper"
    # Any OpenAI-compatible endpoint: the `llm` Serve app (llama.cpp on CPU, vLLM on GPU) by default.
    llm_base_url: str = "http://127.0.0.1:8000/llm/v1"
    # The route prefix of the `llm` Serve app, which the proxies keep internal (deployments/proxy.py).
    llm_route_prefix: str = "/llm"
    llm_model: str = "callcov-cpu-llm"
    # The internal key of the LLM route: Serve's proxies refuse /llm without it (deployments/proxy.py),
    # so it must be in the environment of every node. `callcov-serve` makes one per launch.
    llm_api_key: str = ""
    llm_timeout_s: float = 300.0
    # Verify the LLM (the model is served, the route is private): the dispatcher before it claims a
    # job, the api in /health. The Serve builders turn it on; plain uvicorn leaves it off.
    check_llm: bool = False
    # How long the dispatcher waits at start-up for the LLM to answer (a GPU model loads for minutes).
    llm_startup_timeout_s: float = Field(default=900.0, gt=0)


class WorkerSettings(BaseModel):
    # Jobs in flight per runner (per task group) of one dispatcher replica. The analysis stages have
    # their own: the Serve configs set them from the model deployments' capacity (max replicas x
    # max_ongoing_requests, deployments/capacity.py); unset, they fall back to ``concurrency``.
    concurrency: int = 2
    transcription_concurrency: int | None = Field(default=None, ge=1)
    scoring_concurrency: int | None = Field(default=None, ge=1)
    lease_s: float = 120.0
    poll_interval_s: float = 2.0
    # Attempts of an analysis stage's job (each stage has its own). Transient failures (a model busy,
    # unavailable or timed out) wait retry_initial_s, doubling up to retry_max_wait_s, with up to 2 s
    # of jitter (the same waits for every job kind the queue retries): 19 attempts are 18 waits of
    # 2 s ... 256 s, then 5 min, about an hour in all, so an outage of the transcriber or the LLM of
    # half an hour and more fails no call.
    max_attempts: int = Field(default=19, ge=1)
    retry_initial_s: float = Field(default=2.0, gt=0)
    retry_max_wait_s: float = Field(default=300.0, gt=0)
    # Crashes a job may cause before it is failed for good: a lease that ran out (its worker died
    # running it) or a model replica that died on it (``InferenceCrashed``).
    max_crashes: int = Field(default=2, ge=1)


class AudioSettings(BaseModel):
    """Bounds on the audio one analysis may bring (docs/api.md, "Limits and retries")."""

    # The longest call accepted (seconds): longer is refused at submission (400 audio_too_long) and
    # never decoded past it.
    max_duration_s: float = Field(default=4 * 3600, gt=0)


def default_retry_schedule() -> list[float]:
    # About a day in all: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    return [5, 300, 1800, 7200, 18000, 36000, 36000]


class WebhookSettings(BaseModel):
    # Keys that encrypt the signing secrets at rest: the first encrypts, every one decrypts, so a key
    # can be replaced by putting the new one first (a JSON list in the environment variable).
    encryption_keys: list[str] = Field(default_factory=lambda: [DEV_SECRET], min_length=1)
    timeout_s: float = 30.0
    # Waits before each retry after a failed attempt; its length is the number of retries.
    retry_schedule_s: list[float] = Field(default_factory=default_retry_schedule)
    # After a rotation the previous secret also signs, for this long.
    rotation_overlap_s: int = 24 * 3600
    # Deliveries in flight per dispatcher replica.
    concurrency: int = 16
    response_excerpt_chars: int = 1000


class BillingSettings(BaseModel):
    # Empty: the local ledger (no Stripe account needed). An `sk_…` key: Stripe.
    stripe_secret_key: str = ""
    # Verifies `POST /billing/webhook` (Stripe's `whsec_…`); empty answers that endpoint with 404.
    stripe_webhook_secret: str = ""
    # Where the Stripe API is (tests: localstripe on loopback); empty means Stripe's own.
    stripe_api_base: str = ""
    # Stripe Plan ids of the paid tiers (monthly, USD).
    stripe_plan_ids: dict[str, str] = Field(
        default_factory=lambda: {"starter": "callcov_starter_monthly", "growth": "callcov_growth_monthly"}
    )
    # Create the products and plans in Stripe when missing (development and tests).
    stripe_create_plans: bool = False
    stripe_timeout_s: float = 20.0
    # The SDK's own retries (exponential backoff, idempotency keys on POST) before a call fails.
    stripe_max_network_retries: int = 2
    # Where the customer portal sends the user back to.
    portal_return_url: str = "http://localhost:8000/"
    # Attempts of the usage-report and Stripe-event jobs (backoff between them up to 5 min: about 4 h).
    job_max_attempts: int = 50
    # Tolerance of the Stripe signature timestamp, in seconds.
    webhook_tolerance_s: int = 300
    # Overage minutes a period may reach per paid tier (about 5x the plan's price); an account's own
    # cap (`callcov set-overage-cap`) wins. Submissions past it: 402 (docs/api.md, "Overage cap").
    overage_cap_minutes: dict[str, int] = Field(default_factory=lambda: {"starter": 5000, "growth": 25000})
    # Test-mode audio minutes per account and billing period (test mode is real processing, unbilled).
    test_minutes_per_period: int = Field(default=300, ge=0)


class MetricsSettings(BaseModel):
    """``GET /metrics`` of a run without Ray (plain uvicorn). On Serve, replicas export through Ray's
    metrics agent instead and this stays off (docs/operations.md)."""

    # Off: /metrics answers 404 (it reveals job kinds and volumes, so it is opt-in).
    enabled: bool = False
    # When set, a scrape must send `Authorization: Bearer <token>`; empty: open (keep it on a private
    # port/network then).
    token: str = ""
    # How often the queue gauges are sampled (one GROUP BY over the unfinished jobs).
    sample_interval_s: float = Field(default=15.0, gt=0)


class ServeSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CALLCOV_", env_nested_delimiter="__", env_file=None, extra="ignore"
    )

    environment: Environment = Environment.development
    data_dir: Path = Field(default_factory=default_data_dir)
    log_level: str = "INFO"
    # "text" (local default) or "json": one object per line with request_id and analysis_id.
    log_format: Literal["text", "json"] = "text"
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    idempotency: IdempotencySettings = Field(default_factory=IdempotencySettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    billing: BillingSettings = Field(default_factory=BillingSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)

    @property
    def database_url(self) -> str:
        return self.db.resolved_url(self.data_dir)

    @property
    def storage_root(self) -> Path:
        return Path(self.storage.root) if self.storage.root else self.data_dir / "audio"

    def placeholder_secrets(self) -> list[str]:
        """The secret settings left at a published or short value (the development defaults)."""
        names = [
            f"CALLCOV_AUTH__{name.upper()}"
            for name in ("jwt_secret", "api_key_pepper")
            if _weak(getattr(self.auth, name))
        ]
        if any(_weak(key) for key in self.webhooks.encryption_keys):
            names.append("CALLCOV_WEBHOOKS__ENCRYPTION_KEYS")
        return names

    def check_bind(self, host: str) -> None:
        """Refuse to serve ``host`` when it is not loopback and a secret is a placeholder."""
        weak = self.placeholder_secrets()
        if weak and not is_loopback(host):
            raise InsecureBind(
                f"refusing to serve {host or 'every address'!r} with the published development secrets: "
                f"set {', '.join(weak)} to random values of at least {MIN_SECRET_LENGTH} characters, "
                "or bind a loopback address (127.0.0.1)"
            )

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Self:
        if self.environment.is_local:
            return self
        weak = self.placeholder_secrets()
        if weak:
            raise ValueError(
                f"{', '.join(weak)} must be set to a random secret of at least {MIN_SECRET_LENGTH} "
                f"characters (each) in {self.environment.value}"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
