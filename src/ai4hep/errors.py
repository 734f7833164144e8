"""User-facing errors: the CLI prints these as one line and exits with code 2."""


class UserError(Exception):
    """A problem the user can fix (bad name, bad file, bad number); the message says what and how."""

    exit_code = 2
