"""Errors of the labels stage (light module: importing it does not load toponymy)."""


class NamingError(RuntimeError):
    """Labelling stopped: the namer could not produce a usable label (no fallback is used)."""
