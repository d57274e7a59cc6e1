"""The one exception type that reaches the user as a single line."""


class UserError(Exception):
  """Bad input: a config field, a file or a stage name the user can fix.

  `gansseg_jax.main` prints `error: <message>` on one line and exits with 2.
  The message must name the field or path at fault.
  """


class NotImplementedStageError(UserError):
  """A stage that is registered but not built yet."""
