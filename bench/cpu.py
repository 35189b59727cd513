"""CPU time by process group, read from ``/proc`` (Linux), to say what a throughput figure is bound by.

``CpuMeter(groups)`` snapshots each group's CPU seconds (user + system of its processes, by PID or by command
name) and the machine's busy and total CPU time; :meth:`CpuMeter.since` gives what was used between two
snapshots. A process that exits between two snapshots drops out of its group's figure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _process_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (its own, not its reaped children's) in seconds; 0.0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # fields 14 and 15 of proc(5), after pid and comm


def pids_named(*names: str) -> list[int]:
    """The PIDs whose command name (``/proc/PID/comm``) is one of ``names``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _machine() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all CPUs summed (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / _TICK, total / _TICK


@dataclass(frozen=True)
class Usage:
    """CPU seconds used between two snapshots: per group, and by the machine (``busy`` of ``capacity``)."""

    groups: dict[str, float]
    busy: float
    capacity: float

    @property
    def busy_share(self) -> float:
        return self.busy / self.capacity if self.capacity else 0.0


class CpuMeter:
    """``groups``: name → a function giving the group's PIDs now (looked up at each snapshot)."""

    def __init__(self, groups: dict[str, Callable[[], Iterable[int]]]) -> None:
        self.groups = groups

    def snapshot(self) -> tuple[dict[str, float], tuple[float, float]]:
        per = {name: sum(_process_seconds(pid) for pid in set(pids())) for name, pids in self.groups.items()}
        return per, _machine()

    def since(self, before: tuple[dict[str, float], tuple[float, float]]) -> Usage:
        now, (busy, total) = self.snapshot()
        groups = {name: max(0.0, now[name] - before[0].get(name, 0.0)) for name in self.groups}
        return Usage(groups=groups, busy=busy - before[1][0], capacity=total - before[1][1])
