"""The one error hierarchy: every problem a curator can fix is a :class:`TweetscopeError`.

The message is one line that says what is wrong, where, and what to do next; the CLI prints
it as ``error: <message>`` with exit code 1 and the studio shows it in place. Subclasses say
which part of the pipeline refused; the builtin base each adds (``ValueError``, ...) keeps
``except ValueError`` callers working.
"""

from __future__ import annotations


class TweetscopeError(Exception):
    """A problem the user can act on (bad input, missing artifact, wrong setting, refused publish)."""


class WorkspaceError(TweetscopeError):
    """A dataset or artifact that does not exist, or a name that is not allowed."""


class ConfigError(TweetscopeError, ValueError):
    """A stage setting out of range or of the wrong kind."""


class LineageError(TweetscopeError, ValueError):
    """Artifacts that cannot feed each other (see ``pipeline.stages.lineage``)."""


class IngestError(TweetscopeError, ValueError):
    """The archive cannot be ingested; the message names the file, the problem and the fix."""


class EmbedderError(TweetscopeError, RuntimeError):
    """An embedder that cannot be built or did not return what it should."""


class NamingError(TweetscopeError, RuntimeError):
    """Labelling stopped: the namer could not produce a usable label (no fallback is used)."""


class LabelEditError(TweetscopeError, ValueError):
    """A curator's label edit that breaks a rule (empty, too long, unknown cluster or status)."""


class ContractError(TweetscopeError, ValueError):
    """A frame or file that does not match a serving contract; ``problems`` lists every violation."""

    def __init__(self, title: str, problems: list[str] | None = None):
        self.problems = list(problems or [])
        lines = "".join(f"\n  - {p}" for p in self.problems)
        super().__init__(title + (":" + lines if lines else ""))


class LanceExportError(TweetscopeError, ValueError):
    """A LanceDB export that cannot run or did not produce what it should."""


class ControlPlaneError(TweetscopeError, ValueError):
    """A ``_meta`` control-plane table that is missing, malformed or from another version."""


class PublishError(TweetscopeError):
    """A publish that was refused or stopped; ``report`` says what was and was not uploaded."""

    def __init__(self, message: str, report: dict | None = None):
        super().__init__(message)
        self.report = report or {}


class TargetError(TweetscopeError):
    """A publish target that cannot be reached or refused an operation."""
