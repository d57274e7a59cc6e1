"""The one exception type that reaches the user as a single line, and that line."""
import errno
import re
import sys

USAGE_ERROR = 2  # Exit status of bad input.


class UserError(Exception):
  """Bad input: a config field, a file or a stage name the user can fix.

  The command lines (`gansseg_jax.main`, `gansseg_jax.train.gan`) end with
  `exit_with_error`: `error: <message>` on one line, exit status 2.
  The message must name the field or path at fault.
  """


def exit_with_error(message: str) -> None:
  """Prints `error: <message>` on stderr and exits with USAGE_ERROR."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(USAGE_ERROR)


# How orbax/TensorStore, TensorBoard and the OS say the disk or quota is full.
_FULL_DISK = re.compile(r"No space left on device|RESOURCE_EXHAUSTED|"
                        r"Disk quota exceeded|ENOSPC|EDQUOT")


def causes(error: BaseException) -> list[BaseException]:
  """`error` and the exceptions it was raised from or during."""
  found = []
  while error is not None and error not in found:
    found.append(error)
    error = error.__cause__ or error.__context__
  return found


def is_full_disk(error: BaseException) -> bool:
  """Whether `error` (or one it came from) says the disk or quota is full,
  in whatever exception type the writer raised."""
  return any((isinstance(e, OSError) and e.errno in (errno.ENOSPC,
                                                     errno.EDQUOT))
             or _FULL_DISK.search(str(e)) for e in causes(error))
