"""Audio the tests make with ffmpeg (tones of known length), and reading back what was played."""

from __future__ import annotations

import asyncio
import json
import subprocess
import wave
from array import array
from pathlib import Path
from typing import Any

import httpx

from onair.ffmpeg import ffmpeg_path


def tone(
    path: Path, seconds: float, frequency: int = 440, rate: int = 44100, channels: int = 1
) -> Path:
    """A sine tone of `seconds`, in the format `path`'s extension names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    layout = "mono" if channels == 1 else "stereo"
    subprocess.run(
        [
            ffmpeg_path(),
            *("-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"),
            *("-i", f"sine=frequency={frequency}:sample_rate={rate}:duration={seconds}"),
            *("-af", f"aformat=channel_layouts={layout}", str(path)),
        ],
        check=True,
    )
    return path


def wav_facts(path: Path) -> tuple[float, int]:
    """Duration in seconds and peak sample value (16-bit PCM) of a WAV file."""
    with wave.open(str(path), "rb") as reader:
        frames = reader.getnframes()
        assert reader.getsampwidth() == 2
        samples = array("h", reader.readframes(frames))
        return frames / reader.getframerate(), max((abs(s) for s in samples), default=0)


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], path: Path, name: str | None = None
) -> dict[str, Any]:
    """Upload `path` as a sound; its JSON once accepted."""
    content = await asyncio.to_thread(path.read_bytes)
    response = await client.post(
        "/api/v1/sounds",
        headers=headers,
        files={"file": (path.name, content, "application/octet-stream")},
        data={} if name is None else {"name": name},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def file_outputs(directory: Path, *names: str) -> str:
    """`ONAIR__AUDIO__OUTPUTS` with a WAV file output per name, `<directory>/<name>.wav`."""
    outputs = {name: {"kind": "file", "path": str(directory / f"{name}.wav")} for name in names}
    return json.dumps(outputs)


async def wait_task(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    task_id: str,
    statuses: tuple[str, ...] = ("completed", "failed", "cancelled"),
    within: float = 30,
) -> dict[str, Any]:
    """The task (user API shape) once its status is one of `statuses`."""
    async with asyncio.timeout(within):
        while True:
            response = await client.get(f"/api/v1/scheduler/tasks/{task_id}", headers=headers)
            assert response.status_code == 200, response.text
            if response.json()["status"] in statuses:
                return dict(response.json())
            await asyncio.sleep(0.02)


async def result(client: httpx.AsyncClient, task_id: str, headers: dict[str, str]) -> Any:
    """The latest run's result (the Tasks API keeps it), asked with its owner's `headers`."""
    response = await client.get(f"/tasks/{task_id}/runs?limit=1", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["runs"][0]
