"""Every command the docs show runs as written from a fresh checkout.

The fenced code blocks of README.md, docs/*.md, benchmarks/README.md and
experiments/README.md are read for commands that start a Python program
(`python …`, `python3 …`). Each program is started once with `--help` from
the repository root with no PYTHONPATH (as a user of a fresh clone would
run it), and each `--flag` the docs give it must be one its help lists;
each `--config.a.b` must be a field of the config file the command names.
Commands with placeholders (`<name>`, `...`) are checked for what they spell
out; a program without a folder (`python my_script.py`) is the user's own
file, such as a snippet a page shows, and is skipped.
"""
import functools
import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

from gansseg_jax.infra import config_files
from test_readme_recipes import has_field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = (["README.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs",
                                                             "*.md")))
        + ["benchmarks/README.md", "experiments/README.md"])
BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"(?<!`)`((?:python3?|\.venv/bin/python) [^`\n]+)`(?!`)")
PYTHONS = ("python", "python3", ".venv/bin/python")


def _commands() -> list[tuple[str, str]]:
  """(doc, command) for each Python command in a fenced block or inline."""
  found = []
  for doc in DOCS:
    if not os.path.isfile(os.path.join(ROOT, doc)):
      continue
    text = open(os.path.join(ROOT, doc)).read()
    for block in BLOCK.findall(text):
      for line in re.sub(r"\\\n\s*", " ", block).splitlines():
        words = line.split()
        if words and words[0] in PYTHONS and len(words) > 1:
          found.append((doc, line.split("#")[0].strip()))
    found += [(doc, c) for c in INLINE.findall(BLOCK.sub("", text))
              if c.split()[1] == "-m" or c.split()[1].endswith(".py")]
  return found


COMMANDS = _commands()


def _program(words: list[str]) -> tuple[str, ...]:
  """The argv prefix that starts the program: ('-m', mod) or (script,)."""
  return tuple(words[1:3]) if words[1] == "-m" else (words[1],)


@functools.cache
def _help(program: tuple[str, ...]) -> str:
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env["JAX_PLATFORMS"] = "cpu"
  proc = subprocess.run([sys.executable, *program, "--help"], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=300)
  out = proc.stdout + proc.stderr
  assert "Traceback" not in out and proc.returncode in (0, 1), (
      f"{' '.join(program)} --help (exit {proc.returncode}):\n{out[-3000:]}")
  return out


def test_the_docs_show_commands_of_every_kind():
  programs = {_program(shlex.split(c)) for _, c in COMMANDS}
  assert ("-m", "gansseg_jax.main") in programs
  assert ("benchmarks/bench_train.py",) in programs
  assert len(programs) >= 6, programs


@pytest.mark.parametrize("doc,command", COMMANDS,
                         ids=[f"{d}:{c[:60]}" for d, c in COMMANDS])
def test_command_runs_as_written(doc, command):
  words = shlex.split(command)
  program = _program(words)
  if program[0] != "-m" and "/" not in program[0]:
    pytest.skip(f"{program[0]}: a file of the user's, named by {doc}")
  if program[0] != "-m":
    assert os.path.isfile(os.path.join(ROOT, program[0])), (
        f"{doc}: {program[0]} does not exist")
  usage = _help(program)
  config = None
  for word in words[1 + len(program):]:
    if not word.startswith("--") or "<" in word or word == "--help":
      continue
    name = word[2:].split("=", 1)[0]
    if name == "config":
      path = word.split("=", 1)[1]
      assert os.path.isfile(os.path.join(ROOT, path.split(":")[0])), (
          f"{doc}: {path}")
      config = config_files.load(os.path.join(ROOT, path))
    elif name.startswith("config."):
      assert config is not None and has_field(config, name[len("config."):]), (
          f"{doc}: {command}: no field {name}")
    else:
      assert re.search(rf"--(\[no\])?{re.escape(name)}\b", usage), (
          f"{doc}: {command}: {' '.join(program)} has no flag --{name}")


def test_a_config_loads_from_outside_the_checkout(tmp_path):
  """configs/demo.py imports configs.default: it must load with no PYTHONPATH
  and another cwd, as the benchmarks and tools load it."""
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  code = ("from gansseg_jax.infra import config_files; "
          "print(config_files.load_checkout('demo').train.steps)")
  proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert int(proc.stdout) > 0


def test_benchmarks_and_tools_load_configs_one_way():
  for folder in ("benchmarks", "tools", "experiments", "tests"):
    for path in glob.glob(os.path.join(ROOT, folder, "*.py")):
      assert "spec_from_file" + "_location" not in open(path).read(), (
          f"{path}: load config files with gansseg_jax.infra.config_files")
