"""Settings: one validated object, read from the environment and `.env`."""

from __future__ import annotations

from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: Signs tokens in development and tests only; production refuses to start with it.
DEVELOPMENT_SECRET_KEY = "bookrec-development-secret-key-not-for-production"  # noqa: S105
MIN_SECRET_KEY_LENGTH = 32
#: OWASP's floor for argon2id (19 MiB, 2 passes); production refuses anything weaker.
MIN_PRODUCTION_ARGON2_MEMORY_KIB = 19 * 1024
MIN_PRODUCTION_ARGON2_TIME_COST = 2
#: Who may read /metrics by default: loopback and private addresses (a Prometheus next to
#: the service), not the internet.
PRIVATE_NETWORKS = (
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
    "fc00::/7",
)


class Settings(BaseSettings):
    """Everything the service reads from its environment.

    Unprefixed names (`DATABASE_URL`, `REDIS_URL`) follow the twelve-factor convention that
    hosting platforms set; everything specific to bookrec is prefixed `BOOKREC_`.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    environment: Literal["development", "test", "production"] = Field(
        "development", validation_alias="BOOKREC_ENV"
    )
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    var_dir: Path = Field(Path("var"), validation_alias="BOOKREC_VAR_DIR")
    host: str = Field("127.0.0.1", validation_alias="BOOKREC_HOST")
    port: int = Field(8000, ge=1, le=65535, validation_alias="BOOKREC_PORT")
    workers: int = Field(1, ge=1, le=64, validation_alias="BOOKREC_WORKERS")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias="BOOKREC_LOG_LEVEL"
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto",
        validation_alias="BOOKREC_LOG_FORMAT",
        description="auto: readable lines on a terminal, JSON lines otherwise",
    )

    secret_key: SecretStr = Field(
        SecretStr(DEVELOPMENT_SECRET_KEY),
        validation_alias="BOOKREC_SECRET_KEY",
        description="Signs access tokens (HS256); at least 32 random characters",
    )
    access_token_minutes: int = Field(
        15, ge=1, le=24 * 60, validation_alias="BOOKREC_ACCESS_TOKEN_MINUTES"
    )
    refresh_token_days: int = Field(30, ge=1, le=365, validation_alias="BOOKREC_REFRESH_TOKEN_DAYS")
    jwt_issuer: str = Field("bookrec", min_length=1, validation_alias="BOOKREC_JWT_ISSUER")
    jwt_audience: str = Field("bookrec-api", min_length=1, validation_alias="BOOKREC_JWT_AUDIENCE")
    # argon2id cost; the defaults are argon2-cffi's (RFC 9106 low-memory profile). Tests lower
    # them to stay fast; production refuses anything under OWASP's floor.
    argon2_time_cost: int = Field(3, ge=1, le=20, validation_alias="BOOKREC_ARGON2_TIME_COST")
    argon2_memory_kib: int = Field(
        64 * 1024, ge=8, le=4 * 1024 * 1024, validation_alias="BOOKREC_ARGON2_MEMORY_KIB"
    )
    argon2_parallelism: int = Field(4, ge=1, le=64, validation_alias="BOOKREC_ARGON2_PARALLELISM")
    redis_prefix: str = Field("bookrec:", validation_alias="BOOKREC_REDIS_PREFIX")
    # Serving (issue 7): each worker checks the active model version this often (activations
    # announced on Redis arrive at once) and caches finished lists in a TTL LRU (+ Redis).
    model_poll_seconds: float = Field(
        1.0, gt=0, le=60, validation_alias="BOOKREC_MODEL_POLL_SECONDS"
    )
    worker_threads: int = Field(
        8,
        ge=1,
        le=256,
        validation_alias="BOOKREC_WORKER_THREADS",
        description="threads per API worker running request handlers (queries; lists are"
        " scored on BOOKREC_SCORING_THREADS)",
    )
    scoring_threads: int = Field(
        1,
        ge=1,
        le=64,
        validation_alias="BOOKREC_SCORING_THREADS",
        description="lists an API worker scores at once (the rest wait their turn): scoring is"
        " CPU work, so lists scored side by side in one process share its core and each takes"
        " longer; run more workers to use more cores",
    )
    precompute_k: int = Field(
        50,
        ge=0,
        le=500,
        validation_alias="BOOKREC_PRECOMPUTE_K",
        description="training stores each reader's top K; a reader whose activity has not"
        " changed since is answered from it without scoring (0: score every list live)",
    )
    cache_size: int = Field(
        20_000,
        ge=0,
        le=10_000_000,
        validation_alias="BOOKREC_CACHE_SIZE",
        description="lists kept per worker (0 disables the in-process cache)",
    )
    event_quota_per_reader: int = Field(
        10_000,
        ge=100,
        le=10_000_000,
        validation_alias="BOOKREC_EVENT_QUOTA",
        description="events kept per reader at most; a batch beyond it is refused (429)",
    )
    event_retention_days: int = Field(
        90,
        ge=8,
        le=3650,
        validation_alias="BOOKREC_EVENT_RETENTION_DAYS",
        description="events older than this are deleted (at every training, and when a reader"
        " reaches the quota)",
    )
    model_retention_days: int = Field(
        30,
        ge=1,
        le=3650,
        validation_alias="BOOKREC_MODEL_RETENTION_DAYS",
        description="model versions older than this that are not active lose their artifacts"
        " (pruned at every training); rollback reaches back this far",
    )
    experiment_min_readers: int = Field(
        100,
        ge=1,
        le=10_000_000,
        validation_alias="BOOKREC_EXPERIMENT_MIN_READERS",
        description="readers with impressions every variant needs before a difference counts"
        " as significant (and before a variant ships without force)",
    )
    cache_ttl_seconds: float = Field(
        300.0,
        ge=0,
        le=86_400,
        validation_alias="BOOKREC_CACHE_TTL_SECONDS",
        description="how long a cached list lives (0 disables caching)",
    )
    # Evaluation gate (issue 8): a candidate is promoted only if its GATE_METRIC on a held-out
    # split of up to GATE_READERS readers is at least the active model's × (1 - TOLERANCE).
    gate_readers: int = Field(2000, ge=10, le=1_000_000, validation_alias="BOOKREC_GATE_READERS")
    gate_metric: str = Field(
        "ndcg@10",
        pattern=r"^(precision|recall|ndcg|map|hit_rate|mrr)@([1-9][0-9]{0,2})$",
        validation_alias="BOOKREC_GATE_METRIC",
        description="precision, recall, ndcg, map, hit_rate or mrr @ K (K 1-999)",
    )
    gate_tolerance: float = Field(0.02, ge=0.0, le=1.0, validation_alias="BOOKREC_GATE_TOLERANCE")
    # Training on Apache Spark (issue 23, docs/spark.md): `bookrec train --engine spark`.
    spark_master: str = Field(
        "local[*]",
        min_length=1,
        validation_alias="BOOKREC_SPARK_MASTER",
        description="Spark master URL: local[*], spark://host:7077, yarn, k8s://...",
    )
    spark_driver_memory: str = Field(
        "4g", pattern=r"^[1-9][0-9]*[kmgt]$", validation_alias="BOOKREC_SPARK_DRIVER_MEMORY"
    )
    spark_executor_memory: str | None = Field(
        None, pattern=r"^[1-9][0-9]*[kmgt]$", validation_alias="BOOKREC_SPARK_EXECUTOR_MEMORY"
    )
    spark_partitions: int = Field(
        0,
        ge=0,
        le=100_000,
        validation_alias="BOOKREC_SPARK_PARTITIONS",
        description="partitions of the ratings and ALS blocks (0: Spark's default parallelism)",
    )
    spark_work_dir: Path | None = Field(
        None,
        validation_alias="BOOKREC_SPARK_WORK_DIR",
        description="where the ratings export and ALS checkpoints go (default VAR_DIR/spark); "
        "on a cluster, a directory every executor sees",
    )
    spark_jdbc_jar: Path | None = Field(
        None,
        validation_alias="BOOKREC_SPARK_JDBC_JAR",
        description="PostgreSQL JDBC driver jar (default /usr/share/java/postgresql.jar)",
    )
    # Hardening (issue 6): rate limits in `limits` notation ("10/minute", "100 per hour").
    rate_limit_login_ip: str = Field("10/minute", validation_alias="BOOKREC_RATE_LIMIT_LOGIN_IP")
    rate_limit_login_email: str = Field(
        "5/minute",
        validation_alias="BOOKREC_RATE_LIMIT_LOGIN_EMAIL",
        description="login attempts per account from one address (a hard limit)",
    )
    rate_limit_login_account: str = Field(
        "50/hour",
        validation_alias="BOOKREC_RATE_LIMIT_LOGIN_ACCOUNT",
        description="failed logins per account from all addresses, counted only for devices"
        " that never logged in to it: a device that did (its cookie) is never held back",
    )
    rate_limit_register_ip: str = Field(
        "5/minute", validation_alias="BOOKREC_RATE_LIMIT_REGISTER_IP"
    )
    rate_limit_general: str = Field(
        "600/minute",
        validation_alias="BOOKREC_RATE_LIMIT_GENERAL",
        description="requests per logged-in account, or per address without a token",
    )
    rate_limit_api_key: str = Field(
        "12000/minute",
        validation_alias="BOOKREC_RATE_LIMIT_API_KEY",
        description="requests per API key (an app's backend asks on behalf of many readers);"
        " a key's first request, before this worker verified it, counts by address",
    )
    rate_limit_general_address: str = Field(
        "1800/minute",
        validation_alias="BOOKREC_RATE_LIMIT_GENERAL_ADDRESS",
        description="requests per address whatever the account (many accounts from one"
        " address share it)",
    )
    api_key_cache_seconds: float = Field(
        10.0,
        ge=0,
        le=300,
        validation_alias="BOOKREC_API_KEY_CACHE_SECONDS",
        description="how long a worker trusts an API key it verified (a revocation takes"
        " effect everywhere within this time; 0 checks the database on every request)",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="BOOKREC_CORS_ORIGINS",
        description="Origins allowed to call the API from a browser, comma-separated",
    )
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, le=1024 * 1024 * 1024, validation_alias="BOOKREC_MAX_BODY_BYTES"
    )
    # Training jobs (issue 8): a running job refreshes its heartbeat; one silent for longer
    # than the lease is marked failed (its worker died).
    embedded_worker: bool = Field(True, validation_alias="BOOKREC_EMBEDDED_WORKER")
    job_lease_seconds: float = Field(
        30.0, ge=2, le=3600, validation_alias="BOOKREC_JOB_LEASE_SECONDS"
    )
    job_heartbeat_seconds: float = Field(
        5.0, gt=0, le=600, validation_alias="BOOKREC_JOB_HEARTBEAT_SECONDS"
    )
    job_poll_seconds: float = Field(1.0, gt=0, le=60, validation_alias="BOOKREC_JOB_POLL_SECONDS")
    train_schedule: str = Field(
        "",
        validation_alias="BOOKREC_TRAIN_SCHEDULE",
        description="Cron expression (UTC) for scheduled retraining; empty = off",
    )
    train_algo: str | None = Field(None, validation_alias="BOOKREC_TRAIN_ALGO")
    # Metrics (issue 21): `GET /metrics` sums every worker of `bookrec serve` through files in
    # one directory; who may read it is restricted by address and/or a bearer token.
    metrics_dir_setting: Path | None = Field(
        None,
        validation_alias="PROMETHEUS_MULTIPROC_DIR",
        description="where serve's processes share their metrics (emptied at every start);"
        " default VAR_DIR/metrics",
    )
    metrics_allow: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=lambda: [ip_network(n) for n in PRIVATE_NETWORKS],
        validation_alias="BOOKREC_METRICS_ALLOW",
        description="networks (CIDR, comma-separated) whose clients may read /metrics; `*`: any"
        " address. Default: loopback and private networks",
    )
    worker_metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        validation_alias="BOOKREC_WORKER_METRICS_PORT",
        description="the Celery worker serves its job metrics on this port (0: off); the"
        " embedded worker's reach serve's /metrics",
    )
    metrics_token: SecretStr | None = Field(
        None,
        validation_alias="BOOKREC_METRICS_TOKEN",
        description="when set, /metrics also requires `Authorization: Bearer <token>`",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc}); e.g. postgresql://user@host/db") from exc
        backend = url.get_backend_name()
        if backend not in {"sqlite", "postgresql"}:
            raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
        return value

    @field_validator(
        "rate_limit_login_ip",
        "rate_limit_login_email",
        "rate_limit_login_account",
        "rate_limit_register_ip",
        "rate_limit_general",
        "rate_limit_general_address",
        "rate_limit_api_key",
    )
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit ({exc}); e.g. 10/minute") from exc
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_cors_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("train_schedule")
    @classmethod
    def _check_train_schedule(cls, value: str) -> str:
        value = " ".join(value.split())
        if value:
            from croniter import croniter

            if len(value.split()) != 5 or not croniter.is_valid(value):
                raise ValueError("not a 5-field cron expression, e.g. '0 3 * * *' (03:00 UTC)")
        return value

    @field_validator("metrics_allow", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if value.strip() == "*":
            return [ip_network("0.0.0.0/0"), ip_network("::/0")]
        networks = []
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            try:
                networks.append(ip_network(part, strict=False))
            except ValueError as exc:
                raise ValueError(f"{part!r} is not a network ({exc}); e.g. 10.0.0.0/8") from exc
        return networks

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError("BOOKREC_METRICS_TOKEN must be at least 16 characters")
        return value

    @field_validator("train_algo")
    @classmethod
    def _check_train_algo(cls, value: str | None) -> str | None:
        if not value:
            return None
        from bookrec.recsys.registry import ALGORITHMS

        if value not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {value!r}; choose from {', '.join(ALGORITHMS)}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> Settings:
        key = self.secret_key.get_secret_value()
        how = (
            "set BOOKREC_SECRET_KEY to at least 32 random characters, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )
        if len(key) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(f"BOOKREC_SECRET_KEY is too short ({len(key)} characters): {how}")
        if self.environment == "production":
            if key == DEVELOPMENT_SECRET_KEY:
                raise ValueError(
                    f"BOOKREC_SECRET_KEY is missing or the development default in production: {how}"
                )
            if (
                self.argon2_memory_kib < MIN_PRODUCTION_ARGON2_MEMORY_KIB
                or self.argon2_time_cost < MIN_PRODUCTION_ARGON2_TIME_COST
            ):
                raise ValueError(
                    "argon2 cost too low for production: BOOKREC_ARGON2_MEMORY_KIB must be at "
                    f"least {MIN_PRODUCTION_ARGON2_MEMORY_KIB} and BOOKREC_ARGON2_TIME_COST at "
                    f"least {MIN_PRODUCTION_ARGON2_TIME_COST} (or leave both unset)"
                )
        if self.job_heartbeat_seconds * 2 > self.job_lease_seconds:
            raise ValueError(
                "BOOKREC_JOB_LEASE_SECONDS must be at least twice BOOKREC_JOB_HEARTBEAT_SECONDS"
            )
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError(
                "BOOKREC_ARGON2_MEMORY_KIB must be at least 8 × BOOKREC_ARGON2_PARALLELISM"
            )
        return self

    @cached_property
    def sqlalchemy_url(self) -> str:
        """The URL SQLAlchemy connects to; PostgreSQL always goes through psycopg 3."""
        if self.database_url is None:
            return f"sqlite:///{(self.var_dir / 'bookrec.sqlite3').resolve()}"
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url)
        if url.get_backend_name() == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)

    @property
    def models_dir(self) -> Path:
        return self.var_dir / "models"

    @property
    def metrics_dir(self) -> Path:
        return self.metrics_dir_setting or self.var_dir / "metrics"

    @property
    def reports_dir(self) -> Path:
        return self.var_dir / "reports"


def load_settings() -> Settings:
    """Read settings from the environment; raises pydantic's ValidationError on a bad value."""
    return Settings()
