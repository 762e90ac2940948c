"""Stage configs are ``param.Parameterized`` classes: one declaration gives the studio
widget (``pn.Param``), the CLI flag, the validation and the sidecar's ``params``.
"""

from __future__ import annotations

import argparse
from typing import Any, Type, TypeVar

import param

from pipeline.core.errors import ConfigError

C = TypeVar("C", bound="StageConfig")


class StageConfig(param.Parameterized):
    """Base class of every stage config; subclasses only declare parameters."""

    def to_dict(self) -> dict[str, Any]:
        """The parameter values (not ``name``), as stored verbatim in the artifact sidecar."""
        return {k: getattr(self, k) for k in self.param if k != "name"}

    @classmethod
    def from_dict(cls: Type[C], values: dict[str, Any] | None) -> C:
        values = dict(values or {})
        unknown = set(values) - set(cls.param) - {"name"}
        if unknown:
            raise ConfigError(f"{cls.__name__} has no parameter(s) {', '.join(sorted(unknown))}")
        values.pop("name", None)
        return cls(**values)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: Type[StageConfig]) -> None:
    """Add one ``--flag`` per parameter of ``config_cls`` with its type, default, bounds and doc."""
    group = parser.add_argument_group(f"{config_cls.__name__} parameters")
    for name, p in config_cls.param.objects("existing").items():
        if name == "name" or p.constant or p.readonly:
            continue
        help_text = (p.doc or "").strip().replace("%", "%%")
        default = p.default
        if isinstance(p, param.Boolean):
            group.add_argument(_flag(name), dest=name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=f"{help_text} (default: {default})")
            continue
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS}
        if isinstance(p, param.Selector) and not isinstance(p, param.ClassSelector):
            kwargs["choices"] = list(p.objects) if not isinstance(p.objects, dict) else list(p.objects.values())
            kwargs["type"] = type(default) if default is not None and not isinstance(default, bool) else str
        elif isinstance(p, param.Integer):
            kwargs["type"] = int
        elif isinstance(p, param.Number):
            kwargs["type"] = float
        elif isinstance(p, param.List):
            kwargs["nargs"] = "*"
        else:
            kwargs["type"] = str
        bounds = getattr(p, "bounds", None)
        extra = f"; range {bounds[0]}..{bounds[1]}" if bounds else ""
        if isinstance(p, param.Number) and p.allow_None:
            kwargs["type"] = _optional(kwargs["type"])
            extra += "; 'none' to unset"
        group.add_argument(_flag(name), help=f"{help_text} (default: {default}{extra})", **kwargs)


def _optional(conv):
    def convert(text: str):
        return None if text.lower() in ("none", "null", "") else conv(text)

    convert.__name__ = getattr(conv, "__name__", "value")
    return convert


def config_from_args(config_cls: Type[C], args: argparse.Namespace) -> C:
    """Build a config from parsed CLI args; only flags the user gave override the defaults."""
    values = {
        name: getattr(args, name)
        for name in config_cls.param
        if name != "name" and hasattr(args, name)
    }
    try:
        return config_cls(**values)
    except ValueError as exc:  # param's bound/type errors
        raise ConfigError(_flag_problem(config_cls, values, exc)) from None


def _out_of_range(p: param.Parameter, value: Any) -> str | None:
    """'is out of range lo..hi' when ``value`` breaks the hard bounds of ``p``, else None."""
    bounds = getattr(p, "bounds", None)
    if not bounds or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    lo, hi = bounds
    inc_lo, inc_hi = getattr(p, "inclusive_bounds", (True, True))
    if (lo is not None and (value < lo if inc_lo else value <= lo)) or \
            (hi is not None and (value > hi if inc_hi else value >= hi)):
        if lo is None:
            return f"must be {'at most' if inc_hi else 'below'} {hi}"
        if hi is None:
            return f"must be {'at least' if inc_lo else 'above'} {lo}"
        return f"is out of range {lo}..{hi}"
    return None


def _flag_problem(config_cls: Type[StageConfig], values: dict[str, Any], exc: ValueError) -> str:
    """One line naming the flag whose value param refused (e.g. '--min-dist 5.0 is out of range 0.0..1.0')."""
    for name, value in values.items():
        try:
            config_cls(**{name: value})
        except ValueError as one:
            problem = _out_of_range(config_cls.param[name], value)
            shown = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
            if problem:
                return f"{_flag(name)} {shown} {problem}"
            detail = " ".join(str(one).split())
            return f"{_flag(name)} {shown!r} is not allowed ({detail})"
    return " ".join(str(exc).split())
