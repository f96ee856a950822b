"""Exceptions the CLI turns into exit codes: 1 for findings, 2 for usage/tool errors."""


class LlmopsError(Exception):
    """A problem the user can fix; the message says how."""

    exit_code = 2


class ToolError(LlmopsError):
    """A required external tool is missing, wrong, or failed."""
