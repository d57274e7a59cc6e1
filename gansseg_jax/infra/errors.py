"""The one exception type that reaches the user as a single line, and that line."""
import sys

USAGE_ERROR = 2  # Exit status of bad input.


class UserError(Exception):
  """Bad input: a config field, a file or a stage name the user can fix.

  The command lines (`gansseg_jax.main`, `gansseg_jax.train.gan`) end with
  `exit_with_error`: `error: <message>` on one line, exit status 2.
  The message must name the field or path at fault.
  """


class NotImplementedStageError(UserError):
  """A stage that is registered but not built yet."""


def exit_with_error(message: str) -> None:
  """Prints `error: <message>` on stderr and exits with USAGE_ERROR."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(USAGE_ERROR)
