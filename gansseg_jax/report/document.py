"""A report as a list of blocks, rendered to self-contained HTML and markdown.

HTML inlines every figure as a base64 data URI (one file to mail or open
anywhere); markdown links the same PNGs, written under `report_files/`.
"""
import base64
import dataclasses
import html
from typing import Sequence, Union


@dataclasses.dataclass(frozen=True)
class Heading:
  text: str
  level: int = 2


@dataclasses.dataclass(frozen=True)
class Paragraph:
  text: str


@dataclasses.dataclass(frozen=True)
class Table:
  header: Sequence[str]
  rows: Sequence[Sequence[str]]


@dataclasses.dataclass(frozen=True)
class Figure:
  name: str  # File name under report_files/ (markdown).
  png: bytes
  caption: str


Block = Union[Heading, Paragraph, Table, Figure]

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; }
figure { margin: 0.5em 0 1.5em; }
figcaption { font-size: 90%; color: #555; }
img { image-rendering: pixelated; max-width: 100%; }
"""


def to_html(title: str, blocks: Sequence[Block]) -> str:
  out = [f"<!doctype html><html><head><meta charset='utf-8'>"
         f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
         f"<body><h1>{html.escape(title)}</h1>"]
  for block in blocks:
    if isinstance(block, Heading):
      out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
    elif isinstance(block, Paragraph):
      out.append(f"<p>{html.escape(block.text)}</p>")
    elif isinstance(block, Table):
      head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
      body = "".join(
          "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r)
          + "</tr>" for r in block.rows)
      out.append(f"<table><tr>{head}</tr>{body}</table>")
    else:
      data = base64.b64encode(block.png).decode("ascii")
      out.append(f"<figure><img src='data:image/png;base64,{data}' "
                 f"alt='{html.escape(block.name)}'><figcaption>"
                 f"{html.escape(block.caption)}</figcaption></figure>")
  out.append("</body></html>")
  return "\n".join(out) + "\n"


def _md_cell(value) -> str:
  return str(value).replace("|", "\\|")


def to_markdown(title: str, blocks: Sequence[Block], files_dir: str) -> str:
  out = [f"# {title}", ""]
  for block in blocks:
    if isinstance(block, Heading):
      out += ["#" * block.level + " " + block.text, ""]
    elif isinstance(block, Paragraph):
      out += [block.text, ""]
    elif isinstance(block, Table):
      out.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
      out.append("|" + "---|" * len(block.header))
      out += ["| " + " | ".join(_md_cell(c) for c in r) + " |"
              for r in block.rows]
      out.append("")
    else:
      out += [f"![{block.name}]({files_dir}/{block.name})", "",
              f"*{block.caption}*", ""]
  return "\n".join(out)
