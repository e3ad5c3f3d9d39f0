"""`python -m onair` is the `onair` command."""

from __future__ import annotations

from onair.cli import main

main()
