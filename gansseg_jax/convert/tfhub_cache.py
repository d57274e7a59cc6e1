"""Whether a TF-Hub URL can be loaded here, asked before a run writes anything.

tensorflow_hub caches a downloaded module in
`$TFHUB_CACHE_DIR/<sha1 of the URL>/` (default `<tmp>/tfhub_modules`, see
tensorflow_hub/resolver.py and compressed_module_resolver.py). A handle
whose folder is there (with its saved_model.pb) loads offline. Otherwise the
download needs the URL's host: one TCP connection to it, with a short
timeout, says whether it is reachable. Nothing is downloaded here.
"""
import hashlib
import os
import socket
import tempfile
import threading
from typing import Optional
import urllib.parse

CONNECT_TIMEOUT_S = 5.0  # Name lookup and TCP connect, each.


def cache_dir() -> str:
  """Where tensorflow_hub keeps downloaded modules."""
  return (os.environ.get("TFHUB_CACHE_DIR")
          or os.path.join(tempfile.gettempdir(), "tfhub_modules"))


def cached_module(handle: str) -> Optional[str]:
  """The cached module folder of `handle`, if a complete one is there."""
  path = os.path.join(cache_dir(), hashlib.sha1(handle.encode()).hexdigest())
  if os.path.isfile(os.path.join(path, "saved_model.pb")):
    return path
  return None


def _connect(host: str, port: int, result: list) -> None:
  try:
    socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    result.append(None)
  except OSError as e:
    result.append(f"{host}:{port}: {e.strerror or e}")


def unavailable(handle: str) -> Optional[str]:
  """None when `handle` (a URL) is cached or its host answers; else why not."""
  if cached_module(handle):
    return None
  url = urllib.parse.urlparse(handle)
  port = url.port or (443 if url.scheme == "https" else 80)
  result = []
  # The name lookup has no timeout of its own: wait for it in a thread.
  thread = threading.Thread(target=_connect, args=(url.hostname, port, result),
                            daemon=True)
  thread.start()
  thread.join(2 * CONNECT_TIMEOUT_S)
  if not result:
    return f"{url.hostname}:{port}: no answer in {2 * CONNECT_TIMEOUT_S:g} s"
  return result[0]
