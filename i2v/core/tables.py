"""Validation of parsed config tables (lists of TOML tables): exact keys, types, ranges, named problems."""
from __future__ import annotations

from typing import Any, Mapping
from i2v.core.errors import I2VError


class ConfigError(I2VError, ValueError):
    """A config file whose content does not match its schema; the message names every problem."""


# field: (kind or tuple of kinds, minimum or None, maximum or None)
Spec = Mapping[str, tuple[Any, float | None, float | None]]


def check_rows(rows: Any, spec: Spec, what: str) -> list[dict[str, Any]]:
    """Every row has exactly the spec's keys with values of the right kind and range; returns plain dicts."""
    if not isinstance(rows, list) or not rows:
        raise ConfigError("config_not_rows", what=what, kind=type(rows).__name__)
    problems = []
    for index, row in enumerate(rows):
        where = f"{what}[{index}]"
        if not isinstance(row, Mapping):
            problems.append(f"{where} is not a table")
            continue
        problems += [f"{where}: unknown key {key!r}" for key in sorted(set(row) - set(spec))]
        problems += [f"{where}: missing key {key!r}" for key in spec if key not in row]
        for key, (kind, low, high) in spec.items():
            if key not in row:
                continue
            value = row[key]
            kinds = kind if isinstance(kind, tuple) else (kind,)
            if isinstance(value, bool) or not isinstance(value, kinds):
                problems.append(f"{where}: {key} must be {'/'.join(k.__name__ for k in kinds)}, got {value!r}")
            elif (low is not None and value < low) or (high is not None and value > high):
                problems.append(f"{where}: {key} must be in [{low}, {high}], got {value!r}")
    if problems:
        raise ConfigError("config_problems", detail="; ".join(problems))
    return [dict(row) for row in rows]


def check_only_key(data: Mapping[str, Any], key: str, what: str) -> Any:
    """The document must hold exactly one top-level key (e.g. `preset`)."""
    extra = sorted(set(data) - {key})
    if extra or key not in data:
        raise ConfigError("config_only_key", what=what, table=key, keys=sorted(data))
    return data[key]
