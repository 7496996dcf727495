"""The base of every error a user can fix, so that every binary reports them the same way.

Each project error type (a bad config field, data record, checkpoint, flag, a locked or
mismatched workdir...) derives from `ReasonRLError` as well as from the builtin type it always
was (ValueError, FileNotFoundError...), and says what is wrong and where (`file:line`, the dotted
config field or the flag). `reasonrl.cli.run` prints such an error, like an OSError, as one line
`error: <message>` and exits with status 2; anything else is a bug and keeps its traceback.
"""


class ReasonRLError(Exception):
    """An error in the user's input or environment, reported in one line by every binary."""
