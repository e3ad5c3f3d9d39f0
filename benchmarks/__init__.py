"""onair's benchmark suite: `python -m benchmarks` (or `make bench`) prints one table.

It measures, it never fails: scheduling throughput, firing precision, precision under a
backlog, execution throughput and two nodes on PostgreSQL, against APScheduler 3 where a peer
makes sense. See docs/performance.md for the results and how to read them.
"""

from __future__ import annotations
