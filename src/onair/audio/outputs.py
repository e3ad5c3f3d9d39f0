"""Named outputs: where the player sends audio. Each is an ffmpeg sink.

The settings hold a mapping of output name to one of these models, told apart by `kind`
(`ONAIR__AUDIO__OUTPUTS='{"studio": {"kind": "device", "driver": "pulse"}}'`). Each model gives
the ffmpeg *output* arguments only (encoder, muxer and destination, destination last); the
player adds the input side, real-time pacing and any duration limit in front of them.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class _Output(BaseModel, ABC):
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

    @abstractmethod
    def describe(self) -> str:
        """Where the audio goes, safe to log (no credentials)."""

    @abstractmethod
    def ffmpeg_args(self) -> list[str]:
        """ffmpeg's output options and target for this sink."""


class DeviceOutput(_Output):
    """A sound card of this host, through PulseAudio (or PipeWire's Pulse server) or ALSA."""

    kind: Literal["device"] = "device"
    driver: Literal["pulse", "alsa"] = Field("pulse", description="Audio system of the host.")
    device: str = Field(
        "default",
        min_length=1,
        description="Pulse sink name or ALSA device (`default`, `hw:0`, `plughw:1,0`).",
    )

    def describe(self) -> str:
        return f"{self.driver} device {self.device}"

    def ffmpeg_args(self) -> list[str]:
        if self.driver == "pulse":
            sink = [] if self.device == "default" else ["-device", self.device]
            # The last argument of a Pulse output is the stream name shown in the mixer.
            return ["-f", "pulse", *sink, "onair"]
        return ["-f", "alsa", self.device]


_ICECAST_CODECS: dict[str, list[str]] = {
    "audio/mpeg": ["-c:a", "libmp3lame", "-f", "mp3"],
    "audio/ogg": ["-c:a", "libvorbis", "-f", "ogg"],
    "audio/aac": ["-c:a", "aac", "-f", "adts"],
}


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

    def describe(self) -> str:
        parts = urlsplit(self.url.get_secret_value())
        port = f":{parts.port}" if parts.port else ""
        return f"icecast://{parts.hostname}{port}{parts.path}"

    def ffmpeg_args(self) -> list[str]:
        return [
            *_ICECAST_CODECS[self.content_type][:2],
            "-b:a",
            f"{self.bitrate}k",
            "-content_type",
            self.content_type,
            *_ICECAST_CODECS[self.content_type][2:],
            self.url.get_secret_value(),
        ]


_STREAM_CODECS: dict[str, str] = {"mp3": "libmp3lame", "aac": "aac", "opus": "libopus"}


class _StreamOutput(_Output):
    """MPEG-TS over the network: what SRT and UDP receivers (and ffmpeg, VLC, OBS) expect."""

    url: str
    codec: Literal["mp3", "aac", "opus"] = Field("mp3", description="Audio codec in the stream.")
    bitrate: int = Field(128, ge=16, le=512, description="Encoder bit rate in kbit/s.")

    def describe(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def ffmpeg_args(self) -> list[str]:
        codec = _STREAM_CODECS[self.codec]
        return ["-c:a", codec, "-b:a", f"{self.bitrate}k", "-f", "mpegts", self.url]


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

    def ffmpeg_args(self) -> list[str]:
        # Whole TS packets per datagram (7 x 188 bytes), as receivers expect; ffmpeg's default
        # of 1472 bytes splits packets across datagrams.
        if "pkt_size=" in self.url:
            return super().ffmpeg_args()
        separator = "&" if "?" in self.url else "?"
        return [*super().ffmpeg_args()[:-1], f"{self.url}{separator}pkt_size=1316"]


class FileOutput(_Output):
    """Playback written to a file, still in real time: for tests and for archiving what went on
    the air. Each playback replaces the file; the encoder and container follow its extension."""

    kind: Literal["file"] = "file"
    path: Path = Field(description="Where to write, e.g. `/var/lib/onair/last.wav`.")

    def describe(self) -> str:
        return f"file {self.path}"

    def ffmpeg_args(self) -> list[str]:
        return ["-y", f"file:{self.path}"]  # a colon in the name is not a protocol


class NullOutput(_Output):
    """A silent sink. Playback still decodes in real time, so timing and the busy rules are the
    same as on a real device: the fallback on hosts without sound."""

    kind: Literal["null"] = "null"

    def describe(self) -> str:
        return "silent sink"

    def ffmpeg_args(self) -> list[str]:
        return ["-f", "null", "-"]


Output = Annotated[
    DeviceOutput | IcecastOutput | SrtOutput | UdpOutput | FileOutput | NullOutput,
    Field(discriminator="kind"),
]
"""One configured output; `kind` says which."""

Outputs = dict[str, Output]
"""Outputs by name, as the settings hold them."""


@dataclass(frozen=True)
class DefaultOutputs:
    """The outputs to use when none are configured, and a warning to log at start-up when the
    host has no usable sound device (playback then goes to the silent sink)."""

    outputs: Outputs
    warning: str | None


def default_outputs(
    environ: Mapping[str, str] | None = None,
    sound_devices: Path = Path("/dev/snd"),
) -> DefaultOutputs:
    """`{"default": ...}`: the Pulse server when its socket is reachable, else ALSA when the host
    has sound devices, else the silent sink with a warning.

    Pulse comes first because it shares the card with other programs and PipeWire serves it
    too. A Pulse server given by `PULSE_SERVER` is trusted without a check (it may be remote).
    """
    env = os.environ if environ is None else environ
    if env.get("PULSE_SERVER") or _pulse_socket(env).exists():
        return DefaultOutputs({"default": DeviceOutput(driver="pulse")}, None)
    if sound_devices.is_dir() and any(sound_devices.iterdir()):
        return DefaultOutputs({"default": DeviceOutput(driver="alsa")}, None)
    return DefaultOutputs(
        {"default": NullOutput()},
        "No sound device found (no PulseAudio socket, no /dev/snd): the default output is a "
        "silent sink. Configure ONAIR__AUDIO__OUTPUTS to play to a device or a stream.",
    )


def _pulse_socket(env: Mapping[str, str]) -> Path:
    runtime = env.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return Path(runtime) / "pulse" / "native"
