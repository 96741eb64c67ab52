"""The errors sevenfold raises.

Every message is one line a user can act on. Errors a model can learn from
(a bad path, an edit that matched twice) are `ToolError`s: they are returned
to the model as a tool message, not raised out of the run.
"""

from __future__ import annotations


class SevenfoldError(Exception):
    """Base class: something the user (or the model) has to fix."""


class SettingsError(SevenfoldError):
    """A setting is missing or invalid; the message names the field."""


class ServerError(SevenfoldError):
    """The model server cannot be used (unreachable, wrong model, bad answer)."""


class ServerUnreachableError(ServerError):
    """Nothing answered at the endpoint within the connect timeout."""


class ServerWentAwayError(ServerError):
    """The server stopped accepting connections during a run (after retries); the run can be resumed."""


class ModelNotServedError(ServerError):
    """The server answers but does not serve the configured model."""


class WorkspaceError(SevenfoldError):
    """The repository or a worktree cannot be used as asked."""


class ToolError(SevenfoldError):
    """A tool call the model made cannot be carried out; tell the model why."""


class PathOutsideWorkspaceError(ToolError):
    """A path resolves outside the worktree (`..`, absolute, or via a symlink)."""


class ContextTooLongError(ServerError):
    """The server refused a request whose prompt (plus the completion asked for) exceeds its context length."""

    def __init__(self, message: str, limit: int | None = None, input_tokens: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        """The server's maximum context length, if it said."""
        self.input_tokens = input_tokens
        """The prompt's tokens as the server counted them, if it said."""
