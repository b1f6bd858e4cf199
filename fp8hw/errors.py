"""The base of every error this project reports to a user in one line."""


class Fp8hwError(Exception):
    """A problem with the user's input or environment, not a bug: the message says what is
    wrong in one line, and the command-line tools print it as ``error: MESSAGE``."""
