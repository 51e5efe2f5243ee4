"""Naming a device's counts honestly in reports.

A device counts one of: retired instructions (QEMU -icount), core cycles (a real board's
DWT CYCCNT) or wall time in nanoseconds (the POSIX port). Reports keep the three apart: the
count goes under the key of its unit, and `instructions` is null unless the device counts
instructions, so a time in nanoseconds is never read as an instruction count.
"""

from __future__ import annotations

# DeviceInfo.counter_unit -> the report key its counts go under
KEYS = {"instructions": "instructions", "cycles": "cycles", "nanoseconds": "time_ns"}


def counter_key(unit: str) -> str | None:
    return KEYS.get(unit)


def counter_fields(unit: str, value) -> dict:
    """{"instructions": value or None} plus {"cycles": value} / {"time_ns": value} for those units."""
    key = counter_key(unit)
    fields = {"instructions": value if key == "instructions" else None}
    if key and key != "instructions":
        fields[key] = value
    return fields
