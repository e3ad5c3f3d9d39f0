"""The broadcast neighbours' JSON, as they put it on the wire (contracts/emischeduler.md §2).

Keys are camelCase on the wire and snake_case here. Datetimes are **naive**, exactly as the
neighbours send them, and each field says in which zone it is meant:

* event and instance times (`Event.start`, `Instance.start`, `Record.start`, ...) are wall time
  in the event's own `timezone`;
* schedule query bounds, `expiresAt`, `createdAt` and `checkedAt` are UTC.

An aware value from a neighbour is refused (the contract says naive): it would mean the
neighbour changed its wire format, and guessing the zone would move a broadcast silently.
Unknown keys are ignored, so a neighbour may add fields without breaking onair.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, NaiveDatetime
from pydantic.alias_generators import to_camel

from onair.engine.latestart import LatePolicy, grace_field, policy_field

EventType = Literal["live", "replay", "prerecorded"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class Show(WireModel):
    id: UUID
    title: str
    description: str | None = None


class WeekdayRule(WireModel):
    day: Weekday
    occurrence: int | None = None


class RecurrenceRule(WireModel):
    frequency: Literal["secondly", "minutely", "hourly", "daily", "weekly", "monthly", "yearly"]
    until: NaiveDatetime | None = None
    """UTC."""
    count: int | None = None
    interval: int | None = None
    by_seconds: list[int] | None = None
    by_minutes: list[int] | None = None
    by_hours: list[int] | None = None
    by_weekdays: list[WeekdayRule] | None = None
    by_monthdays: list[int] | None = None
    by_yeardays: list[int] | None = None
    by_weeks: list[int] | None = None
    by_months: list[int] | None = None
    by_set_positions: list[int] | None = None
    week_start: Weekday | None = None


class Recurrence(WireModel):
    rule: RecurrenceRule | None = None
    include: list[NaiveDatetime] | None = None
    exclude: list[NaiveDatetime] | None = None


class Event(WireModel):
    """One planned broadcast of a show; `start`/`end` are wall time in `timezone`."""

    id: UUID
    type: EventType
    show_id: UUID
    show: Show | None = None
    start: NaiveDatetime
    end: NaiveDatetime
    timezone: str
    recurrence: Recurrence | None = None


class Instance(WireModel):
    """One occurrence of an event; wall time in the event's `timezone`."""

    start: NaiveDatetime
    end: NaiveDatetime


class Schedule(WireModel):
    event: Event
    instances: list[Instance]


class Page(WireModel):
    """A page of a listing. `count` is the total number of items matching, over all pages."""

    count: int = Field(ge=0)
    limit: int | None = None
    offset: int | None = None


class EventList(Page):
    events: list[Event]


class ScheduleList(Page):
    """`count` counts schedules (events), not instances."""

    schedules: list[Schedule]


class Record(WireModel):
    """A recording of a live event's instance; `start` is wall time in the event's zone."""

    event: UUID
    start: NaiveDatetime


class RecordList(Page):
    records: list[Record]


class PrerecordingList(Page):
    prerecordings: list[Record]


class Credentials(WireModel):
    token: str
    expires_at: NaiveDatetime
    """UTC."""


class Reservation(WireModel):
    """emistream's answer to a reservation. `port` is its SRT port; onair uses its own setting
    instead, as the reference does (the SRT host and port may be seen differently from here)."""

    credentials: Credentials
    port: int = Field(ge=1, le=65535)


class ReserveRequest(WireModel):
    event: UUID
    format: Literal["ogg"] = "ogg"
    record: bool = False


class Availability(WireModel):
    """Which event holds emistream's slot (None: free), as of `checked_at` (UTC)."""

    event: UUID | None
    checked_at: NaiveDatetime


class AvailabilityData(WireModel):
    availability: Availability


class AvailabilityChanged(WireModel):
    type: Literal["availability-changed"]
    created_at: NaiveDatetime
    data: AvailabilityData


class OtherStreamEvent(WireModel):
    """Any other event on emistream's `/sse` (the contract names a `foo` type); ignored."""

    type: str
    created_at: NaiveDatetime | None = None


StreamEvent = Annotated[AvailabilityChanged | OtherStreamEvent, Field(union_mode="left_to_right")]


class StreamParameters(BaseModel):
    """The parameters of a `stream` task (`onair.operations.stream`): the event's `id`, and
    `start`, the instance's start as naive wall time in the event's own time zone. The
    late-start policy (`onair.engine.latestart`) is onair's own; the reference has none."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    start: NaiveDatetime
    late_start: LatePolicy = policy_field("join")
    late_grace: float = grace_field()
