"""The install matrix: each extras combination the README offers, per Python.

`make install-check` (or `python tools/install_check.py`) makes a throwaway
venv under /tmp for each (Python, extras) pair, installs the repository into
it the README's way (`pip install -e ".[extras]"`, pip's own cache, the pins
of setup.py; with `export`, then jax2onnx with --no-deps), runs tools/install_smoke.py in it (outside the repository, with
no PYTHONPATH) and deletes it. It prints one row per pair and a markdown table
(also written to --table), and exits 1 when any pair failed. Standard library
only: any python3 runs it. Slow: about 2 hours for the 12 pairs on a loaded
2-core machine, mostly pip unpacking tensorflow and torch (docs/install.md has
the latest table and times); --pythons and --combos pick a subset.
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(REPO, "tools", "install_smoke.py")
PYTHONS = ("python3.11", "python3.12")
# '+' installs one after the other: 'tf,test+torch' is `make test`, then
# `pip install -e ".[torch]"` into the same venv.
COMBOS = ("", "tf", "tf,torch", "tf,test", "tf,test,torch", "tf,test+torch",
          "tf,export")
# An install with the `export` extra then takes setup.py's JAX2ONNX pin with
# --no-deps, as the Makefile does (its metadata asks for an older orbax).
JAX2ONNX = re.search(r'^JAX2ONNX = "(.*)"$',
                     open(os.path.join(REPO, "setup.py")).read(),
                     re.M).group(1)
# Versions worth a column: the ones whose mix broke `import tensorflow_hub`.
SHOWN = ("setuptools", "tensorflow-hub", "tensorflow-cpu", "torch")


def _run(command, log, **kwargs):
  """Runs `command`, appending its output to `log`; True when it exits 0."""
  with open(log, "a") as out:
    out.write(f"$ {' '.join(command)}\n")
    out.flush()
    return subprocess.run(command, stdout=out, stderr=subprocess.STDOUT,
                          check=False, **kwargs).returncode == 0


def _versions(python):
  out = subprocess.run(
      [python, "-m", "pip", "list", "--format=json"], capture_output=True,
      text=True, check=False).stdout
  listed = {p["name"].lower().replace("_", "-"): p["version"]
            for p in json.loads(out or "[]")}
  return {name: listed.get(name, "-") for name in SHOWN}


def check_one(python, extras, root, keep):
  """Installs and smoke-tests one pair; returns its row."""
  name = (f"{os.path.basename(python)}-"
          f"{extras.replace(',', '-').replace('+', '-then-') or 'core'}")
  venv = os.path.join(root, name)
  log = os.path.join(root, f"{name}.log")
  row = {"python": os.path.basename(python),
         "extras": extras.replace("+", " then ") or "(core)", "log": log}
  shutil.rmtree(venv, ignore_errors=True)
  if os.path.exists(log):
    os.remove(log)
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  venv_python = os.path.join(venv, "bin", "python")
  start = time.time()
  installed = (
      _run([python, "-m", "venv", venv], log, env=env)
      and _run([venv_python, "-m", "pip", "install", "--quiet", "--upgrade",
                "pip"], log, env=env)
      and all(_run([venv_python, "-m", "pip", "install", "--quiet", "-e",
                    f"{REPO}[{step}]" if step else REPO], log, env=env)
              for step in extras.split("+"))
      and ("export" not in extras
           or _run([venv_python, "-m", "pip", "install", "--quiet",
                    "--no-deps", JAX2ONNX], log, env=env)))
  row["install_s"] = round(time.time() - start)
  row["smoke_s"], row["checks"] = 0, []
  if installed:
    row.update(_versions(venv_python))
    start = time.time()
    smoke = subprocess.run(
        [venv_python, SMOKE, f"--extras={extras.replace('+', ',')}"],
        cwd=root, env=env,
        capture_output=True, text=True, check=False)
    row["smoke_s"] = round(time.time() - start)
    with open(log, "a") as out:
      out.write(smoke.stdout + smoke.stderr)
    row["checks"] = [json.loads(line) for line in smoke.stdout.splitlines()
                     if line.startswith("{")]
    row["ok"] = smoke.returncode == 0 and bool(row["checks"])
  else:
    row["ok"] = False
  if not keep:
    shutil.rmtree(venv, ignore_errors=True)
  return row


def table(rows):
  lines = ["| Python | extras | install s | smoke s | "
           + " | ".join(SHOWN) + " | checks | result |",
           "|" + "---|" * (6 + len(SHOWN))]
  for r in rows:
    checks = ", ".join(c["check"] + ("" if c["ok"] else " FAILED")
                       for c in r["checks"]) or "-"
    lines.append(
        f"| {r['python']} | {r['extras']} | {r['install_s']} | {r['smoke_s']} "
        "| " + " | ".join(r.get(n, "-") for n in SHOWN)
        + f" | {checks} | {'pass' if r['ok'] else 'FAIL'} |")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--pythons", default=",".join(PYTHONS),
                      help="comma-separated interpreters (names or paths)")
  parser.add_argument("--combos", default=";".join(COMBOS),
                      help="';'-separated extras combinations ('' = core, "
                      "'a+b' = .[a] then .[b] into the same venv)")
  parser.add_argument("--root", default="/tmp/gansseg-install-check",
                      help="where the throwaway venvs and logs go")
  parser.add_argument("--table", default="",
                      help="also write the markdown table and JSON rows here")
  parser.add_argument("--keep", action="store_true",
                      help="keep the venvs (default: delete each after use)")
  args = parser.parse_args()
  os.makedirs(args.root, exist_ok=True)
  rows, missing = [], []
  for name in args.pythons.split(","):
    python = shutil.which(name)
    if python is None or subprocess.run(  # pyenv's shims exist but may fail.
        [python, "-c", "import venv"], capture_output=True,
        check=False).returncode:
      missing.append(name)
      print(f"{name}: not found, skipped", flush=True)
      continue
    for extras in args.combos.split(";"):
      row = check_one(python, extras, args.root, args.keep)
      rows.append(row)
      print(f"{row['python']} [{row['extras']}]: "
            f"{'pass' if row['ok'] else 'FAIL (see ' + row['log'] + ')'} "
            f"install {row['install_s']} s, smoke {row['smoke_s']} s; "
            + json.dumps({k: row.get(k) for k in SHOWN}), flush=True)
  header = (f"{time.strftime('%Y-%m-%d', time.gmtime())}, "
            f"{platform.machine()} {os.cpu_count()} cores, {platform.system()}"
            + (f"; not found: {', '.join(missing)}" if missing else ""))
  text = f"{header}\n\n{table(rows)}\n"
  print("\n" + text)
  if args.table:
    with open(args.table, "w") as f:
      f.write(text + "\n```json\n" + json.dumps(rows, indent=1) + "\n```\n")
  sys.exit(0 if rows and all(r["ok"] for r in rows) else 1)


if __name__ == "__main__":
  main()
