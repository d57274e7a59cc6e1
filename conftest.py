"""pytest settings for the whole checkout (tests/ and benchmarks/)."""


def pytest_configure(config):
  config.addinivalue_line(
      "markers", "slow: several subprocesses that compile JAX, or a longer "
      "variant of a fast test (deselect with -m 'not slow')")
