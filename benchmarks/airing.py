"""Scenario 7: first audio. 100 `play_sound` system tasks of a 0.2 s sound, due one after the
other 0.35 s apart on two file outputs (50 each), run by an embedded node on SQLite with real
ffmpeg: the lateness of each run's start (due to the operation's start, as the engine reports
it) next to the lateness of its first audio leaving onair (planned instant to the first packet
written, by ffmpeg's progress: `onair.ffmpeg.Progress`). The difference is ffmpeg's start-up:
spawning it, opening the file and the output, decoding the first frame."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import timedelta

from benchmarks.common import Options, Row, after, lateness_rows, log, temp_dir
from onair.app import Scheduler
from onair.audio.asrun import Aired
from onair.config import FileOutput, Settings
from onair.engine.events import Event
from onair.engine.models import NewTask, Spec
from onair.ffmpeg import ffmpeg_path

SPACING = 0.35
"""Seconds between two sounds due on the same output (the sound lasts 0.2 s)."""
LEAD = 2.0


async def run(options: Options) -> list[Row]:
    count = 20 if options.quick else 100
    outputs = 2
    scenario = f"7 first audio, {count} sounds on file outputs"
    with temp_dir() as directory:
        sound_file = directory / "beep.wav"
        await asyncio.to_thread(
            subprocess.run,
            [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
             "-i", "sine=frequency=440:duration=0.2", str(sound_file)],
            check=True,
        )  # fmt: skip
        settings = Settings.model_validate(
            {
                "store": {"url": f"sqlite:///{directory / 'onair.db'}"},
                "audio": {
                    "media_dir": str(directory / "media"),
                    "outputs": {
                        f"out{i}": FileOutput(path=directory / f"out{i}.wav")
                        for i in range(outputs)
                    },
                },
                "credits": {"daily_recharge": False},
                "synchronizer": {"enabled": False},
                "cleaner": {"enabled": False},
            }
        )
        starts: list[float] = []
        aired: list[Aired] = []
        done = asyncio.Event()

        def started(event: Event) -> None:
            if event.kind == "started" and event.lateness is not None:
                starts.append(event.lateness * 1000)

        def heard(item: Aired) -> None:
            aired.append(item)
            if len(aired) >= count:
                done.set()

        async with Scheduler(settings) as scheduler:
            node = scheduler.node
            node.engine.events.subscribe(started)
            node.asrun.watch(heard)
            sound = await node.library.import_file(sound_file, owner=None)
            first = after(LEAD)
            log(f"scenario {scenario}: scheduling")
            for k in range(count):
                due = first + timedelta(seconds=SPACING * (k // outputs))
                await node.engine.add(
                    NewTask(
                        Spec("play_sound", {"sound_id": str(sound.id), "output": f"out{k % 2}"}),
                        Spec("at", {"datetime": due.isoformat()}),
                    )
                )
            async with asyncio.timeout(LEAD + SPACING * count + 60):
                await done.wait()
    first_audio = [item.lateness * 1000 for item in aired if item.lateness is not None]
    log(f"  {len(first_audio)} first audio measured, {len(starts)} starts")
    note = f"{outputs} outputs, sounds due {SPACING:g} s apart; SQLite"
    rows = lateness_rows(scenario, "onair run start", starts, note)
    rows += lateness_rows(scenario, "onair first audio", first_audio, note)
    missing = count - len(first_audio)
    rows.append(Row(scenario, "onair first audio", "not measured", missing, "", note, False))
    return rows
