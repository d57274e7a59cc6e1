"""Test order for `make test` (`-n 2 --dist loadfile --no-loadscope-reorder`).

xdist hands whole files to its workers in collection order; when a long file
starts last, one worker idles while the other finishes it. The longest files
(by `--durations`, on a 2-core CPU) therefore come first, longest first; every
other file keeps its place, and the order inside a file is unchanged.
"""
import os

LONGEST_FIRST = (
    "test_generator_kinds_e2e.py",
    "test_faults.py",
    "test_train_steps_per_call.py",
    "test_faces_e2e.py",
    "test_integrity.py",
    "test_directions_planted.py",
    "test_pipeline_e2e.py",
    "test_demo_gan_train.py",
    "test_train_multidevice.py",
    "test_train_e2e.py",
    "test_biggan_deep_tfhub.py",
    "test_demo_direction.py",
)


def pytest_collection_modifyitems(items):
  rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
  items[:] = sorted(items, key=lambda item: rank.get(
      os.path.basename(str(item.fspath)), len(rank)))
