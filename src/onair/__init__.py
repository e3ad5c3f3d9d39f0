"""onair: the scheduler for radio stations and audio platforms."""

from __future__ import annotations
