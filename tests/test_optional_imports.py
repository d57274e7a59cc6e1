"""gansseg_jax.infra.optional: an import failure is reported as what it is.

Packages are fabricated on a temporary sys.path entry (with dist-info, as pip
writes it); the issue's own case runs the installed tensorflow_hub with
pkg_resources made unimportable.
"""
import importlib.util
import logging
import re
import sys

import pytest

from configs import default
from gansseg_jax.infra import errors
from gansseg_jax.infra import monitoring
from gansseg_jax.infra import optional
from gansseg_jax.data import sources


def fabricate(site, package, version, source):
  """An installed package: site/package/__init__.py + its dist-info."""
  (site / package).mkdir(parents=True)
  (site / package / "__init__.py").write_text(source)
  info = site / f"{package}-{version}.dist-info"
  info.mkdir()
  (info / "METADATA").write_text(
      f"Metadata-Version: 2.1\nName: {package.replace('_', '-')}\n"
      f"Version: {version}\n")
  (info / "top_level.txt").write_text(package + "\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
  monkeypatch.syspath_prepend(str(tmp_path))
  yield tmp_path
  for name in [n for n in sys.modules if n.startswith("fake_i23")]:
    del sys.modules[name]


def test_absent_module_says_not_installed_and_how_to_install():
  with pytest.raises(errors.UserError) as e:
    optional.load("fake_i23_absent.sub", "config.x.y: 'z'", "pip install w")
  assert str(e.value) == ("config.x.y: 'z' needs fake_i23_absent.sub, which is "
                          "not installed (pip install w)")


def test_missing_dependency_names_it_and_the_package_that_imports_it(site):
  fabricate(site, "fake_i23_hub", "1.2.3",
            "X = 1\nfrom fake_i23_gone import parse_version\n")
  with pytest.raises(errors.UserError) as e:
    optional.load("fake_i23_hub", "config.g.source: 'tfhub'", "pip install h")
  assert str(e.value) == (
      "config.g.source: 'tfhub' needs fake_i23_hub, which is installed but "
      "fails to import: fake_i23_hub (fake-i23-hub 1.2.3) imports "
      "fake_i23_gone, which is not installed; reinstalling with pip install h "
      "may bring it back")


def test_other_import_error_names_the_importer_and_the_error(site):
  fabricate(site, "fake_i23_native", "0.1",
            "raise ImportError('libfoo.so: cannot open shared object file')\n")
  with pytest.raises(errors.UserError, match=(
      r"needs fake_i23_native, which is installed but fails to import: in "
      r"fake_i23_native \(fake-i23-native 0.1\), ImportError: libfoo.so: "
      r"cannot open shared object file$")):
    optional.load("fake_i23_native", "config.a", "pip install n")


def test_loaded_module_is_returned(site):
  fabricate(site, "fake_i23_fine", "2.0", "VALUE = 42\n")
  assert optional.load("fake_i23_fine", "config.a", "pip install f").VALUE == 42


@pytest.mark.skipif(importlib.util.find_spec("tensorflow_hub") is None,
                    reason="tensorflow-hub is not installed (the `tf` extra)")
def test_tensorflow_hub_without_pkg_resources_names_setuptools(monkeypatch):
  """The issue's venv: tensorflow-hub installed, no pkg_resources."""
  from gansseg_jax.convert import tfhub  # pylint: disable=g-import-not-at-top
  for name in [n for n in sys.modules
               if n == "tensorflow_hub" or n.startswith("tensorflow_hub.")]:
    monkeypatch.delitem(sys.modules, name)
  monkeypatch.setitem(sys.modules, "pkg_resources", None)
  with pytest.raises(errors.UserError, match=(
      r"^config.generator.source: 'tfhub' needs tensorflow_hub, which is "
      r"installed but fails to import: tensorflow_hub \(tensorflow-hub "
      r"[0-9.]+\) imports pkg_resources, which is not installed; setuptools 82 "
      r"and newer no longer ship it")):
    tfhub._import_hub()  # pylint: disable=protected-access


@pytest.mark.parametrize("blocked, level", [
    ("tensorflow", logging.INFO),
    ("clu.metric_writers.tf.summary_writer", logging.WARNING)])
def test_tensorboard_writer_falls_back_to_jsonl(blocked, level, tmp_path,
                                                monkeypatch, caplog):
  """No tensorflow (core install) is info; a broken clu is a warning."""
  for name in [n for n in sys.modules if n.startswith("clu.metric_writers")]:
    monkeypatch.delitem(sys.modules, name)
  monkeypatch.setitem(sys.modules, blocked, None)
  # absl's own logger too: a CLI run earlier in this process (flags parsed)
  # may have set its level.
  with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO,
                                                      logger="absl"):
    writer = monitoring.MetricsWriter(str(tmp_path), "stage")
  writer.write_scalars(1, {"loss": 0.5})
  writer.close()
  assert (tmp_path / "metrics.jsonl").exists()
  assert not (tmp_path / "tensorboard").exists()
  (record,) = [r for r in caplog.records if "TensorBoard events off" in
               r.getMessage()]
  assert record.levelno == level
  assert re.search(r"clu\.metric_writers\S* \(clu [0-9.]+\) imports "
                   + re.escape(blocked) + ", which is not installed",
                   record.getMessage()), record.getMessage()


@pytest.mark.parametrize("entry", ["ecssd", "cub"])
def test_tfds_dataset_without_tfds_names_the_entry(entry, monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
  with pytest.raises(errors.UserError, match=(
      rf"^config.eval.datasets: '{entry}' needs tensorflow_datasets, which is "
      r"not installed \(pip install -e '.\[tf\]'\)$")):
    sources.open_source(entry, default.get_config().eval)
