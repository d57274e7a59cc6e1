"""A report opened in headless Chromium (tools/browser_check.py, what
`make browser-check` runs on the demo): every image decodes, no console
error, the direction and metrics sections are there; and a broken page
fails. Skipped where /usr/bin/chromium or playwright is absent."""
import base64
import os
import re

import pytest

import skips  # pylint: disable=g-bad-import-order
import test_report_stage
from configs import test as test_config
from gansseg_jax.report import stage as report_stage
from tools import browser_check

if not os.path.isfile(browser_check.CHROMIUM):
  pytest.skip(f"{browser_check.CHROMIUM} is not installed (make browser-check "
              "installs Debian's chromium)", allow_module_level=True)
skips.import_unless_absent("playwright")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
  """report.html of configs/test.py on a workdir with every report input."""
  workdir = test_report_stage.make_workdir(str(tmp_path_factory.mktemp("w")))
  report_stage.run(test_config.get_config(), workdir)
  return os.path.join(workdir, "report.html")


def test_the_report_renders_in_chromium(report, tmp_path):
  shot = str(tmp_path / "shot.png")
  result = browser_check.check_report(report, screenshot=shot)
  assert result["failures"] == []
  page = open(report).read()
  assert result["images"] == len(re.findall("<img ", page)) > 0
  assert "Direction used" in result["sections"]
  assert result["html_bytes"] == os.path.getsize(report)
  assert os.path.getsize(shot) > 0


def test_a_broken_image_and_a_script_error_fail_the_check(report, tmp_path):
  page = open(report).read()
  broken = re.sub(r"base64,[A-Za-z0-9+/=]+",
                  "base64," + base64.b64encode(b"not a png").decode(), page,
                  count=1)
  broken = broken.replace("</body>", "<script>undefinedCall()</script></body>")
  broken = broken.replace("<h2>Metrics</h2>", "<h2>Numbers</h2>")
  path = tmp_path / "broken.html"
  path.write_text(broken)
  failures = browser_check.check_report(str(path))["failures"]
  assert any("did not decode" in f for f in failures), failures
  assert any("undefinedCall" in f for f in failures), failures
  assert "no table in a 'Metrics' section" in failures
