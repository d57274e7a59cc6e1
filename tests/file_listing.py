"""What a folder holds, for tests that promise a run changed nothing."""
import os


def listing(folder) -> dict:
  """{path relative to `folder`: bytes} of every file under `folder`."""
  out = {}
  for parent, _, files in os.walk(folder):
    for name in files:
      path = os.path.join(parent, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, folder)] = f.read()
  return out
