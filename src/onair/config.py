"""The settings tree, read once from `ONAIR__SECTION__KEY` variables (and a `.env` file).

Every field has a default that works on one machine. The composition root (`onair.app`) builds
one `Settings` and passes its parts down; nothing here is read at import time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(33000, ge=0, le=65535, description="Port the HTTP server listens on.")
    trusted: str = Field(
        "127.0.0.1",
        description="Proxies whose X-Forwarded-* headers are trusted (forwarded_allow_ips).",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Host names the node answers to besides loopback names, IP addresses and `host` "
            '(the names a proxy forwards, as JSON: `["radio.example.org"]`). Any other '
            "`Host` header is refused (DNS rebinding). Setting this exposes the node."
        ),
    )
    max_body_size: int = Field(
        1 << 20,
        ge=1,
        description=(
            "Largest request body accepted, in bytes; a larger one gets 413 and nothing of it "
            "is kept (uploads of sounds: `audio.max_upload_size`)."
        ),
    )
    shutdown_grace: timedelta = Field(
        timedelta(seconds=3),
        description=(
            "How long a stopping node lets open requests finish before closing them (event "
            "streams and dashboards never finish by themselves)."
        ),
    )
    idle_timeout: timedelta = Field(
        timedelta(seconds=5),
        gt=timedelta(0),
        description=(
            "How long a connection may stay open without a request: after it opens and "
            "between two requests (uvicorn's timeout_keep_alive). Then it is closed."
        ),
    )
    header_timeout: timedelta = Field(
        timedelta(seconds=10),
        gt=timedelta(0),
        description=(
            "How long a request's line and headers may take to arrive, from its first byte; "
            "a slower client is disconnected."
        ),
    )
    body_timeout: timedelta = Field(
        timedelta(seconds=30),
        gt=timedelta(0),
        description=(
            "Longest wait for the next part of a request body (an upload may take longer in "
            "all, as long as it keeps coming); then 408 and the connection is closed."
        ),
    )
    max_header_size: int = Field(
        64 * 1024,
        ge=1024,
        description=(
            "Largest request line and headers, in bytes; a larger request gets 431 and is "
            "closed (h11_max_incomplete_event_size on h11)."
        ),
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description=(
            "Connections (and requests in progress) a node serves at once; past it uvicorn "
            "answers 503 (limit_concurrency). Keep it under the process's file limit."
        ),
    )


class StoreSettings(BaseModel):
    url: str = Field(
        "sqlite:///data/onair.db",
        description=(
            "Database URL: `sqlite:///PATH` (the embedded default; a relative PATH is under the "
            "working directory) or `postgresql://USER@HOST:PORT/DB` for several nodes."
        ),
    )
    pool_size: int = Field(10, ge=1, le=200, description="PostgreSQL connections per node.")


class EngineSettings(BaseModel):
    node: str | None = Field(
        None, description="Name of this node in runs and logs (default: host name and pid)."
    )
    lease: timedelta = Field(
        timedelta(seconds=15),
        description=(
            "How long a node's claim on its runs lasts without a heartbeat. A node that dies has "
            "its runs recovered by another once this has passed."
        ),
    )
    lookahead: timedelta = Field(
        timedelta(milliseconds=50),
        description=(
            "How early due runs are claimed, at least; each then starts at its exact due "
            "instant. Covers the claim's own commit time; a burst of runs due together is "
            "claimed earlier by the time claiming them takes."
        ),
    )
    max_running: int = Field(
        10_000,
        ge=1,
        description=(
            "Runs a node holds at once (claimed ahead of their instant or running; about 3 KB "
            "each while waiting); more due runs wait or go to others. Runs due at one instant "
            "start on time only if the nodes together may hold them all."
        ),
    )
    claim_batch: int = Field(500, ge=1, le=10_000, description="Runs claimed per transaction.")
    min_interval: timedelta = Field(
        timedelta(seconds=1),
        ge=timedelta(milliseconds=1),
        description=(
            "Shortest `every` of an interval condition: the floor of how often a series may "
            "run, refused at creation (RRULEs run at most every second, cron every minute)."
        ),
    )
    safety_poll: timedelta = Field(
        timedelta(seconds=30),
        description=(
            "Longest sleep of the engine between looks at the store. Wake-ups come from changes; "
            "this only bounds the damage of a lost notification."
        ),
    )


class CleanerSettings(BaseModel):
    reference: datetime = Field(
        datetime(2000, 1, 1), description="A naive UTC instant the cleaning ticks are aligned to."
    )
    interval: timedelta = Field(
        timedelta(hours=1), description="How often the retention is applied."
    )
    retention: timedelta = Field(
        timedelta(days=30),
        description="Finished tasks, and runs, are deleted this long after they ended.",
    )
    enabled: bool = Field(True, description="Apply the retention periodically.")


class HttpSettings(BaseModel):
    scheme: str = Field("http", description="URL scheme.")
    host: str = Field("localhost", description="Host name.")
    port: int | None = Field(None, ge=1, le=65535, description="Port (empty: none in the URL).")
    path: str | None = Field(None, description="Base path (empty: none).")

    @property
    def url(self) -> str:
        """`scheme://host[:port][/path]`, with one leading and no trailing slash on the path."""
        url = f"{self.scheme}://{self.host}"
        if self.port is not None:
            url += f":{self.port}"
        path = (self.path or "").strip("/")
        return f"{url}/{path}" if path else url


class NeighbourSettings(BaseModel):
    http: HttpSettings = Field(default_factory=HttpSettings)
    timeout: timedelta = Field(
        timedelta(seconds=10), description="Timeout of one HTTP request (connect, read, write)."
    )


def _neighbour(port: int) -> NeighbourSettings:
    return NeighbourSettings(http=HttpSettings(port=port))


class SrtSettings(BaseModel):
    host: str = Field("localhost", description="emistream's SRT ingest host.")
    port: int = Field(10000, ge=1, le=65535, description="emistream's SRT ingest port.")


class EmistreamSettings(NeighbourSettings):
    srt: SrtSettings = Field(default_factory=SrtSettings)


class StreamSettings(BaseModel):
    lead: timedelta = Field(
        timedelta(minutes=15), description="How long before a broadcast its stream task starts."
    )
    reserve_before: timedelta = Field(
        timedelta(seconds=10), description="How long before the broadcast the stream is reserved."
    )
    start_before: timedelta = Field(
        timedelta(seconds=1), description="How long before the broadcast ffmpeg starts."
    )
    timeout: timedelta = Field(
        timedelta(hours=1), description="Deadline for reserving the stream while it is busy."
    )
    window: timedelta = Field(
        timedelta(days=60), description="How far back to look for a live recording to replay."
    )
    cache: Path = Field(Path("data/cache"), description="Where recordings are downloaded.")


class OperationsSettings(BaseModel):
    stream: StreamSettings = Field(default_factory=StreamSettings)


class SynchronizerSettings(BaseModel):
    enabled: bool = Field(True, description="Keep stream tasks in sync with emishows.")
    reference: datetime = Field(
        datetime(2000, 1, 1), description="A naive UTC instant the cycles are aligned to."
    )
    interval: timedelta = Field(timedelta(minutes=1), description="Time between cycles.")
    window: timedelta = Field(timedelta(days=1), description="How far ahead to synchronize.")


DEVELOPMENT_SECRET = "onair-development-secret-change-me"
"""The HS256 secret used when none is configured: a node on loopback warns at start-up, an
exposed node refuses to start with it."""


class AuthSettings(BaseModel):
    secret: SecretStr = Field(
        SecretStr(DEVELOPMENT_SECRET),
        description=(
            "Shared secret of HS256 tokens. The default is for development only: set your own "
            "(e.g. `openssl rand -hex 32`) in production."
        ),
    )
    algorithm: Literal["HS256", "RS256"] = Field(
        "HS256", description="JWT algorithm: HS256 (shared secret) or RS256 (public key)."
    )
    public_key: Path | None = Field(
        None, description="PEM file of the RS256 public key that verifies tokens."
    )
    protect_tasks_api: bool = Field(
        False,
        description=(
            "Require an admin token on the Tasks API (`/tasks`). Off by default on loopback, as "
            "the reference serves it; a node bound beyond loopback refuses to start without it "
            "(or `open_tasks_api`)."
        ),
    )
    open_tasks_api: bool = Field(
        False,
        description=(
            "Keep the Tasks API open without a token on a node bound beyond loopback (a private "
            "network you trust): anyone who reaches the port acts as the station. Logged at "
            "every start-up."
        ),
    )

    @model_validator(mode="after")
    def _key_for_rs256(self) -> AuthSettings:
        if self.algorithm == "RS256" and self.public_key is None:
            raise ValueError("auth.algorithm RS256 needs auth.public_key (a PEM file)")
        return self


class PlanSettings(BaseModel):
    credits: int = Field(100, ge=0, description="Credits a recharge adds.")
    max_credits: int = Field(500, ge=0, description="Balance a recharge never goes beyond.")


class CreditsSettings(BaseModel):
    plan: PlanSettings = Field(
        default_factory=PlanSettings,
        description="The plan new users get (they start with its credits).",
    )
    daily_recharge: bool = Field(
        True, description='Ensure the system task "Daily Credit Recharge" at start-up.'
    )


class RetriesSettings(BaseModel):
    """The bounds of the retry policy users may ask for on their own tasks (`policy.retry` on
    the user API). Admins' and the Tasks API's tasks are bounded by the engine only."""

    max_attempts: int = Field(
        5, ge=1, le=100, description="Most attempts in all a user's task may ask for (1: none)."
    )
    min_backoff: timedelta = Field(
        timedelta(seconds=10),
        description="Shortest delay before a user's task is tried again.",
    )


class EventsSettings(BaseModel):
    history: timedelta = Field(
        timedelta(minutes=10),
        description=(
            "How long `GET /events` keeps events in memory, so a client that reconnects with "
            "Last-Event-ID gets what it missed."
        ),
    )
    history_size: int = Field(
        10_000, ge=1, le=1_000_000, description="Most events kept for resuming, whatever their age."
    )
    keepalive: timedelta = Field(
        timedelta(seconds=15),
        description="Interval of the comment line `GET /events` sends when nothing happens.",
    )


# Audio outputs: where the player sends audio (the ffmpeg arguments of each kind are built in
# `onair.audio.outputs`; the settings only describe them, so reading the settings loads no
# audio code).


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    initial_burst: float = Field(
        0.1,
        gt=0,
        le=10,
        description=(
            "Seconds of audio sent at once when a playback starts, before real-time pacing. A "
            "little fills a network listener's buffer; the larger it is, the earlier a playback "
            "ends before the audience has heard it all."
        ),
    )


class DeviceOutput(_Output):
    """A sound card of this host, through PulseAudio (or PipeWire's Pulse server) or ALSA."""

    kind: Literal["device"] = "device"
    driver: Literal["pulse", "alsa"] = Field("pulse", description="Audio system of the host.")
    device: str = Field(
        "default",
        min_length=1,
        description="Pulse sink name or ALSA device (`default`, `hw:0`, `plughw:1,0`).",
    )


class IcecastOutput(_Output):
    """A source connection to an Icecast mount. Each playback is one source connection, so
    listeners of the mount hear a short gap between tracks; give the mount a fallback to keep
    them connected."""

    kind: Literal["icecast"] = "icecast"
    url: SecretStr = Field(description="`icecast://USER:PASSWORD@HOST:PORT/MOUNT`.")
    content_type: Literal["audio/mpeg", "audio/ogg", "audio/aac"] = Field(
        "audio/mpeg", description="What the mount serves; picks the encoder (MP3, Vorbis, AAC)."
    )
    bitrate: int = Field(128, ge=16, le=512, description="Encoder bit rate in kbit/s.")

    @field_validator("url")
    @classmethod
    def _icecast_url(cls, value: SecretStr) -> SecretStr:
        parts = urlsplit(value.get_secret_value())
        if parts.scheme != "icecast" or not parts.hostname or parts.path in ("", "/"):
            raise ValueError("must look like icecast://USER:PASSWORD@HOST:PORT/MOUNT")
        return value


class _StreamOutput(_Output):
    """MPEG-TS over the network: what SRT and UDP receivers (and ffmpeg, VLC, OBS) expect."""

    url: str
    codec: Literal["mp3", "aac", "opus"] = Field("mp3", description="Audio codec in the stream.")
    bitrate: int = Field(128, ge=16, le=512, description="Encoder bit rate in kbit/s.")


def _check_url(value: str, scheme: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != scheme or not parts.hostname or parts.port is None:
        raise ValueError(f"must look like {scheme}://HOST:PORT (options may follow after ?)")
    return value


class SrtOutput(_StreamOutput):
    kind: Literal["srt"] = "srt"
    url: str = Field(description="`srt://HOST:PORT`, with SRT options as query parameters.")

    @field_validator("url")
    @classmethod
    def _srt_url(cls, value: str) -> str:
        return _check_url(value, "srt")


class UdpOutput(_StreamOutput):
    kind: Literal["udp"] = "udp"
    url: str = Field(description="`udp://HOST:PORT` (unicast or multicast).")

    @field_validator("url")
    @classmethod
    def _udp_url(cls, value: str) -> str:
        return _check_url(value, "udp")


class FileOutput(_Output):
    """Playback written to a file, still in real time: for tests and for archiving what went on
    the air. Each playback replaces the file; the encoder and container follow its extension."""

    kind: Literal["file"] = "file"
    path: Path = Field(description="Where to write, e.g. `/var/lib/onair/last.wav`.")


class NullOutput(_Output):
    """A silent sink. Playback still decodes in real time, so timing and the busy rules are the
    same as on a real device: the fallback on hosts without sound."""

    kind: Literal["null"] = "null"


Output = Annotated[
    DeviceOutput | IcecastOutput | SrtOutput | UdpOutput | FileOutput | NullOutput,
    Field(discriminator="kind"),
]
"""One configured output; `kind` says which."""

Outputs = dict[str, Output]
"""Outputs by name, as the settings hold them."""


class AudioSettings(BaseModel):
    outputs: Outputs = Field(
        default_factory=dict,
        description=(
            'Outputs by name, as JSON: `{"default": {"kind": "file", "path": "x.wav"}}` '
            "(kinds in docs/operations.md). Empty: one `default` found at start-up (Pulse, else "
            "ALSA, else a silent sink, with a warning)."
        ),
    )
    busy_timeout: timedelta = Field(
        timedelta(seconds=5),
        description="How long a playback waits for a busy output before its run fails.",
    )
    cost: int = Field(
        1, ge=0, description="Credits a user's task spends per sound it plays (system tasks: 0)."
    )
    media_dir: Path = Field(Path("data/media"), description="Where uploaded sounds are kept.")
    max_upload_size: int = Field(
        1 << 30,
        ge=1,
        description="Largest upload of a sound (`/api/v1/sounds`), in bytes; larger: 413.",
    )
    seed: int | None = Field(
        None,
        description=(
            "Seed of the random order of shuffle and random play, the same for every run (for "
            "tests). Empty: unpredictable."
        ),
    )


class UiSettings(BaseModel):
    timezone: str = Field(
        "UTC",
        description=(
            "The zone the dashboard shows every time in (the station's, an IANA name such as "
            "Europe/Warsaw), labelled on every page; each time's UTC instant shows on hover."
        ),
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name") from None
        return value


class LogSettings(BaseModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["text", "json"] = Field("text", description="Log line format.")


class ReadinessSettings(BaseModel):
    enabled: bool = Field(True, description="Check upcoming broadcasts before air.")
    leads: list[timedelta] = Field(
        default_factory=lambda: [timedelta(hours=24), timedelta(hours=1), timedelta(minutes=10)],
        description="How long before each broadcast it is checked (the earliest also prefetches).",
    )
    duration_tolerance: timedelta = Field(
        timedelta(seconds=60), description="How far a recording's length may be from its slot's."
    )
    max_silence: timedelta = Field(
        timedelta(seconds=30), description="The longest silence a ready recording may hold."
    )
    silence_noise_db: float = Field(
        -50.0, le=0, description="Below this level (dBFS) audio counts as silence."
    )
    loudness_min: float = Field(-30.0, description="Quietest integrated loudness (LUFS) ready.")
    loudness_max: float = Field(-12.0, description="Loudest integrated loudness (LUFS) ready.")


AlertKind = Literal["run_failed", "late_start", "late_first_audio", "cut_short", "at_risk"]
ALERT_KINDS: tuple[AlertKind, ...] = (
    "run_failed",
    "late_start",
    "late_first_audio",
    "cut_short",
    "at_risk",
)


class Webhook(BaseModel):
    """Where alerts are posted (docs/operations.md, "Alerts"). Only URLs configured here are
    ever called: a webhook task names one of these, never a URL of its own."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="http:// or https:// URL the alerts are POSTed to.")
    secret: SecretStr = Field(
        description="HMAC-SHA256 key of the `X-Onair-Signature` header (at least 16 characters).",
        min_length=16,
    )
    alerts: list[AlertKind] = Field(
        default_factory=lambda: list(ALERT_KINDS), description="Which alerts it receives."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"a webhook URL must be http:// or https:// with a host: {value!r}")
        return value


class AlertsSettings(BaseModel):
    webhooks: dict[str, Webhook] = Field(
        default_factory=dict,
        description=(
            "Webhooks by name, as JSON: "
            '`{"ops": {"url": "https://…", "secret": "…", "alerts": ["run_failed"]}}`.'
        ),
    )
    late_start: timedelta = Field(
        timedelta(seconds=5), description="Alert when a run starts later than this."
    )
    late_first_audio: timedelta = Field(
        timedelta(seconds=5), description="Alert when an item's first audio is later than this."
    )
    timeout: timedelta = Field(timedelta(seconds=10), description="Deadline of one delivery.")
    attempts: int = Field(10, ge=1, le=100, description="Deliveries tried per alert.")
    backoff: timedelta = Field(
        timedelta(seconds=5),
        description="Wait before the second delivery; it doubles, up to 10 minutes.",
    )


class Settings(BaseSettings):
    """All of onair's settings. Environment: `ONAIR__SECTION__KEY`, e.g. `ONAIR__SERVER__PORT`."""

    model_config = SettingsConfigDict(
        env_prefix="ONAIR__",
        env_nested_delimiter="__",
        env_parse_none_str="",
        env_file=".env",
        extra="ignore",
        case_sensitive=False,
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    cleaner: CleanerSettings = Field(default_factory=CleanerSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    emishows: NeighbourSettings = Field(default_factory=lambda: _neighbour(35000))
    emirecords: NeighbourSettings = Field(default_factory=lambda: _neighbour(31000))
    emilounge: NeighbourSettings = Field(default_factory=lambda: _neighbour(28000))
    emistream: EmistreamSettings = Field(
        default_factory=lambda: EmistreamSettings(http=HttpSettings(port=10000))
    )
    operations: OperationsSettings = Field(default_factory=OperationsSettings)
    synchronizer: SynchronizerSettings = Field(default_factory=SynchronizerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    credits: CreditsSettings = Field(default_factory=CreditsSettings)
    retries: RetriesSettings = Field(default_factory=RetriesSettings)
    events: EventsSettings = Field(default_factory=EventsSettings)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    readiness: ReadinessSettings = Field(default_factory=ReadinessSettings)
    debug: bool = Field(False, description="Log tracebacks of unexpected errors in responses.")

    @field_validator("store", mode="after")
    @classmethod
    def _known_database(cls, store: StoreSettings) -> StoreSettings:
        if not store.url.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError(f"unsupported database URL {store.url!r}: use sqlite or postgresql")
        return store


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def exposed(server: ServerSettings) -> bool:
    """Whether the node can be reached from beyond this machine: bound to an address other than
    loopback, or answering to names a proxy forwards (`allowed_hosts`)."""
    return bool(server.allowed_hosts) or not (
        server.host in LOOPBACK or server.host.startswith("127.")
    )


def settings_table() -> str:
    """Every setting as a Markdown table row (variable, default, description): the README's
    table is this function's output, and a test keeps the two in sync."""
    rows = ["| Variable | Default | Description |", "|---|---|---|"]
    rows += [
        f"| `{name}` | `{default}` | {description} |"
        for name, default, description in _walk(Settings, "ONAIR_", Settings())
    ]
    return "\n".join(rows)


def effective_settings(
    settings: Settings, environ: Mapping[str, str], dotenv: Mapping[str, str | None]
) -> list[tuple[str, str, str]]:
    """Every setting as `settings` has it, with where its value came from: `(variable, value,
    source)`, the source `environment`, `.env` or `default` (a variable counts when it or a
    section above it is set: `ONAIR__SERVER='{"port": 8000}'` sets the port). Secrets are
    masked: `SecretStr` values, and passwords in URLs."""
    set_in = {name.upper() for name in environ}
    in_file = {name.upper() for name, value in dotenv.items() if value is not None}
    rows = []
    for name, shown, _ in _walk(Settings, "ONAIR_", settings):
        parts = name.split("__")
        scopes = {"__".join(parts[:i]) for i in range(2, len(parts) + 1)}
        source = "default"
        if scopes & set_in:
            source = "environment"
        elif scopes & in_file:
            source = ".env"
        rows.append((name, _URL_PASSWORD.sub(r"\1***@", shown), source))
    return rows


_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def _walk(model: type[BaseModel], prefix: str, value: BaseModel) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        current = getattr(value, name)
        if isinstance(current, BaseModel):
            found += _walk(type(current), f"{prefix}_{name.upper()}_", current)
            continue
        shown = _show(current)
        found.append((f"{prefix}_{name.upper()}", shown, field.description or ""))
    return found


def _show(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, timedelta):
        return _iso_duration(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict | list):
        import json

        if isinstance(value, list) and all(isinstance(v, timedelta) for v in value):
            return json.dumps([_iso_duration(v) for v in value])
        return json.dumps(value)
    return str(value)


def _iso_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{int(days)}D" if days else "")
    time = (
        (f"{int(hours)}H" if hours else "")
        + (f"{int(minutes)}M" if minutes else "")
        + (f"{secs:g}S" if secs else "")
    )
    return out + ("T" + time if time else "") if (days or time) else "PT0S"
