"""A finding, its severities, and how findings are printed and turned into an exit code."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

SEVERITIES = ("info", "warning", "error")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # error | warning | info
    object: str
    expected: str | None = None
    actual: str | None = None
    hint: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def render_text(findings: Sequence[Finding]) -> str:
    if not findings:
        return "no findings: the schema matches this version's manifest"
    lines = []
    for f in findings:
        lines.append(f"{f.severity.upper():7} {f.code}  {f.object}")
        if f.expected is not None:
            lines.append(f"        expected: {f.expected}")
        if f.actual is not None:
            lines.append(f"        actual:   {f.actual}")
        if f.hint:
            lines.append(f"        fix:      {f.hint}")
    counts = {s: sum(1 for f in findings if f.severity == s) for s in reversed(SEVERITIES)}
    lines.append(", ".join(f"{n} {s}" + ("s" if n != 1 else "") for s, n in counts.items()))
    return "\n".join(lines)


def render_json(findings: Sequence[Finding]) -> str:
    return json.dumps({"findings": [f.as_dict() for f in findings]}, indent=2)


def exit_code(findings: Sequence[Finding], fail_on: str = "error") -> int:
    """0: no finding at or above ``fail_on``; 1: at least one."""
    threshold = _RANK[fail_on]
    return 1 if any(_RANK[f.severity] >= threshold for f in findings) else 0
