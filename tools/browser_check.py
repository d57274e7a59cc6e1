r"""Opens a report.html in headless Chromium and checks that it renders.

  python tools/browser_check.py W/report.html \
      [--screenshot=docs/images/report_screenshot.png] \
      [--chromium=/usr/bin/chromium]

`make browser-check` runs it on the demo's report. Checks, each failure one
line: every <img> has decoded (naturalWidth > 0 once the page has loaded),
no console error and no uncaught page error, the "Direction used" section is
there, and the "Metrics" section holds at least one table. Prints the
page's size (the HTML file, the images inlined in it, the files it links)
and the time the browser took; with --screenshot, a full-page PNG. Exit 0
when every check passes, 1 otherwise. Chromium runs through playwright
(the `browser` extra) with the flags it needs as root in a container, and a
fresh profile (playwright's own temporary --user-data-dir).
"""
import argparse
import json
import os
import pathlib
import re
import sys
import time

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync")
DIRECTION_SECTION = "Direction used"
METRICS_SECTION = "Metrics"

# Per <img>: its alt text, whether loading ended, and its decoded width.
_IMAGES_JS = """Array.from(document.images).map(
    i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth}))"""
# Headings, and the number of tables between each heading and the next.
_SECTIONS_JS = """(() => {
  const out = []; let current = null;
  for (const el of document.body.querySelectorAll('h1,h2,h3,table')) {
    if (el.tagName === 'TABLE') { if (current) current.tables += 1; }
    else { current = {text: el.textContent, tables: 0}; out.push(current); }
  }
  return out; })()"""


def page_size(html_path: str) -> dict:
  """Bytes of the HTML file, of the base64 images inlined in it, and of the
  local files its src/href attributes name."""
  text = pathlib.Path(html_path).read_text()
  inlined = sum(len(m) for m in re.findall(
      r"data:image/[a-z]+;base64,([A-Za-z0-9+/=]+)", text))
  folder = os.path.dirname(os.path.abspath(html_path))
  linked = {name for name in re.findall(r"(?:src|href)='([^':]+)'", text)}
  linked_bytes = sum(os.path.getsize(os.path.join(folder, name))
                     for name in linked
                     if os.path.isfile(os.path.join(folder, name)))
  return {"html_bytes": len(text.encode()), "inlined_image_bytes": inlined,
          "linked_files": len(linked), "linked_bytes": linked_bytes}


def check_report(html_path: str, screenshot: str = "",
                 chromium: str = CHROMIUM) -> dict:
  """{'failures': [...], 'images': n, 'sections': [...], 'seconds': ...}."""
  from playwright.sync_api import sync_playwright  # pylint: disable=g-import-not-at-top
  failures, errors = [], []
  start = time.monotonic()
  with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=chromium,
                                         args=list(FLAGS), headless=True)
    try:
      page = browser.new_page(viewport={"width": 1200, "height": 900})
      page.on("console", lambda message: errors.append(message.text)
              if message.type == "error" else None)
      page.on("pageerror", lambda error: errors.append(str(error)))
      page.goto(pathlib.Path(html_path).resolve().as_uri(), wait_until="load")
      images = page.evaluate(_IMAGES_JS)
      sections = page.evaluate(_SECTIONS_JS)
      if screenshot:
        os.makedirs(os.path.dirname(os.path.abspath(screenshot)),
                    exist_ok=True)
        page.screenshot(path=screenshot, full_page=True)
    finally:
      browser.close()
  seconds = time.monotonic() - start
  if not images:
    failures.append("no <img> in the page")
  failures += [f"image {image['alt']!r} did not decode" for image in images
               if not (image["complete"] and image["width"] > 0)]
  failures += [f"console error: {error}" for error in errors]
  titles = [section["text"] for section in sections]
  if DIRECTION_SECTION not in titles:
    failures.append(f"no '{DIRECTION_SECTION}' section")
  metrics = [s for s in sections if s["text"] == METRICS_SECTION]
  if not metrics or not metrics[0]["tables"]:
    failures.append(f"no table in a '{METRICS_SECTION}' section")
  return {"failures": failures, "images": len(images), "sections": titles,
          "seconds": round(seconds, 2), **page_size(html_path)}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("html")
  parser.add_argument("--screenshot", default="")
  parser.add_argument("--chromium", default=CHROMIUM)
  args = parser.parse_args(argv)
  for path, what in ((args.html, "report"), (args.chromium, "Chromium")):
    if not os.path.isfile(path):
      print(f"error: {path}: no such file ({what})", file=sys.stderr)
      return 2
  result = check_report(args.html, args.screenshot, args.chromium)
  print(json.dumps({k: v for k, v in result.items() if k != "failures"}))
  for failure in result["failures"]:
    print(f"FAILED: {failure}")
  if not result["failures"]:
    print(f"browser check passed: {result['images']} images decoded, "
          f"{result['html_bytes'] / 1e6:.2f} MB of HTML")
  return 1 if result["failures"] else 0


if __name__ == "__main__":
  sys.exit(main())
