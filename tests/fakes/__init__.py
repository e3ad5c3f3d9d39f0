"""Contract-faithful fakes of the broadcast neighbours, served over real HTTP.

    with served_neighbours() as n:
        n.emishows.add_event(...)
        client = Emishows(n.settings("emishows"))

Each fake keeps a log of the requests it received (`fake.requests`, `await fake.wait_for(...)`)
and accepts injected faults (`fake.inject(Fault(...))`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from onair.config import EmistreamSettings, HttpSettings, NeighbourSettings, SrtSettings
from tests.fakes.emishows import FakeEmishows, FakeEvent
from tests.fakes.emistream import FakeEmistream, Reserved
from tests.fakes.recordings import FakeEmilounge, FakeEmirecords, StoredFile
from tests.fakes.server import Fault, Logged, free_udp_port, serve


def neighbour_settings(url: str, timeout: timedelta = timedelta(seconds=2)) -> NeighbourSettings:
    parts = urlsplit(url)
    return NeighbourSettings(
        http=HttpSettings(scheme=parts.scheme, host=parts.hostname or "", port=parts.port),
        timeout=timeout,
    )


@dataclass
class Neighbours:
    emishows: FakeEmishows
    emirecords: FakeEmirecords
    emilounge: FakeEmilounge
    emistream: FakeEmistream

    def settings(self, name: str, timeout: timedelta = timedelta(seconds=2)) -> NeighbourSettings:
        fake = getattr(self, name)
        return neighbour_settings(fake.url, timeout)

    def emistream_settings(
        self, srt_host: str = "127.0.0.1", timeout: timedelta = timedelta(seconds=2)
    ) -> EmistreamSettings:
        base = neighbour_settings(self.emistream.url, timeout)
        return EmistreamSettings(
            http=base.http,
            timeout=timeout,
            srt=SrtSettings(host=srt_host, port=self.emistream.srt_port),
        )


@contextlib.contextmanager
def served_neighbours(srt_port: int | None = None) -> Iterator[Neighbours]:
    """All four fakes, each on its own free port; emistream's SRT port is a free UDP port."""
    emishows = FakeEmishows()
    neighbours = Neighbours(
        emishows=emishows,
        emirecords=FakeEmirecords(emishows),
        emilounge=FakeEmilounge(emishows),
        emistream=FakeEmistream(emishows, srt_port=srt_port or free_udp_port()),
    )
    with serve(
        neighbours.emishows, neighbours.emirecords, neighbours.emilounge, neighbours.emistream
    ):
        yield neighbours


__all__ = [
    "Fault",
    "FakeEmilounge",
    "FakeEmirecords",
    "FakeEmishows",
    "FakeEmistream",
    "FakeEvent",
    "Logged",
    "Neighbours",
    "Reserved",
    "StoredFile",
    "free_udp_port",
    "neighbour_settings",
    "serve",
    "served_neighbours",
]
