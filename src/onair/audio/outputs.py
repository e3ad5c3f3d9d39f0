"""Named outputs: where the player sends audio. Each is an ffmpeg sink.

The settings describe each output (`onair.config`: `DeviceOutput`, `IcecastOutput`, ...,
told apart by `kind`, e.g. `ONAIR__AUDIO__OUTPUTS='{"studio": {"kind": "device", "driver":
"pulse"}}'`); this module turns a description into the ffmpeg *output* arguments only (encoder,
muxer and destination, destination last). The player adds the input side, real-time pacing and
any duration limit in front of them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from onair.config import (
    DeviceOutput,
    FileOutput,
    IcecastOutput,
    NullOutput,
    Output,
    Outputs,
    SrtOutput,
    UdpOutput,
)

_ICECAST_CODECS: dict[str, list[str]] = {
    "audio/mpeg": ["-c:a", "libmp3lame", "-f", "mp3"],
    "audio/ogg": ["-c:a", "libvorbis", "-f", "ogg"],
    "audio/aac": ["-c:a", "aac", "-f", "adts"],
}
_STREAM_CODECS: dict[str, str] = {"mp3": "libmp3lame", "aac": "aac", "opus": "libopus"}


def describe(output: Output) -> str:
    """Where the audio goes, safe to log (no credentials)."""
    match output:
        case DeviceOutput():
            return f"{output.driver} device {output.device}"
        case IcecastOutput():
            parts = urlsplit(output.url.get_secret_value())
            port = f":{parts.port}" if parts.port else ""
            return f"icecast://{parts.hostname}{port}{parts.path}"
        case SrtOutput() | UdpOutput():
            parts = urlsplit(output.url)
            return f"{parts.scheme}://{parts.netloc}"
        case FileOutput():
            return f"file {output.path}"
        case NullOutput():
            return "silent sink"


def ffmpeg_args(output: Output) -> list[str]:
    """ffmpeg's output options and target for this sink."""
    match output:
        case DeviceOutput(driver="pulse"):
            sink = [] if output.device == "default" else ["-device", output.device]
            # The last argument of a Pulse output is the stream name shown in the mixer.
            return ["-f", "pulse", *sink, "onair"]
        case DeviceOutput():
            return ["-f", "alsa", output.device]
        case IcecastOutput():
            encoder, muxer = (
                _ICECAST_CODECS[output.content_type][:2],
                _ICECAST_CODECS[output.content_type][2:],
            )
            return [
                *encoder,
                *("-b:a", f"{output.bitrate}k", "-content_type", output.content_type),
                *muxer,
                output.url.get_secret_value(),
            ]
        case SrtOutput():
            return _mpegts(output.codec, output.bitrate, output.url)
        case UdpOutput():
            # Whole TS packets per datagram (7 x 188 bytes), as receivers expect; ffmpeg's
            # default of 1472 bytes splits packets across datagrams.
            url = output.url
            if "pkt_size=" not in url:
                url += ("&" if "?" in url else "?") + "pkt_size=1316"
            return _mpegts(output.codec, output.bitrate, url)
        case FileOutput():
            # Each packet is written at once, not in 32 KiB blocks: a reader sees the audio as
            # it goes out, and the first-audio instant is when its first bytes appear.
            # A colon in the name is not a protocol.
            return ["-flush_packets", "1", "-y", f"file:{output.path}"]
        case NullOutput():
            return ["-f", "null", "-"]


def _mpegts(codec: str, bitrate: int, url: str) -> list[str]:
    return ["-c:a", _STREAM_CODECS[codec], "-b:a", f"{bitrate}k", "-f", "mpegts", url]


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
