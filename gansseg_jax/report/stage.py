"""Stage `report`: what a run did, on one page (docs/method.md end to end).

Inputs (all optional; a section is left out, with a note, when its files are
absent — W = workdir):
  W/stages/*.json               wall time of each finished stage
  W/ranking.csv, W/strips/      the direction ranking, the direction used and
                                its strip, the top strips (score)
  W/filter_rates.json           the filters' pass rates of that direction (train)
  W/<export.output_dir>/        synthetic pairs with filter outcomes (synth)
  W/metrics.jsonl               training curves and last values (train)
  W/eval.json, W/eval/*/*_samples.npz  metrics of every dataset and
                                predictor evaluated so far, and predictions
Outputs:
  W/report.html                 self-contained (images inlined)
  W/report.md + W/report_files/ the same in markdown, PNGs beside it
"""
import csv
import glob
import io
import json
import os

from absl import logging
import ml_collections
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax.infra import monitoring
from gansseg_jax.infra import workdir as wd
from gansseg_jax.data import sources
from gansseg_jax.directions import objectness
from gansseg_jax.directions import ranking
from gansseg_jax.eval import tables as eval_tables
from gansseg_jax.generator_interface import kinds
from gansseg_jax.generator_interface import latent
from gansseg_jax.report import charts
from gansseg_jax.report import document as doc
from gansseg_jax.report import images as pics
from gansseg_jax.synth import pass_rates

FILES_DIR = "report_files"
THUMB = 96  # Pixel height of one picture in a grid row.
STRIPS_SHOWN = 3  # Top-ranked strips shown.
STRIP_WIDTH = 640  # Strips are enlarged (nearest neighbour) to this width.
TILE = 128  # Synthetic samples are enlarged to at least this size.
TILES_PER_ROW = 8
RANKING_ROWS = 10  # Rows of the ranking table.
# Training curves: (panel title, metrics.jsonl keys, fixed y range or None).
# "synth/kept_of_generated" is derived: synth/kept / synth/generated.
CURVES = (("loss", ("loss", "holdout/loss"), None),
          ("kept fraction", ("synth/kept_of_generated", "kept_fraction"),
           (0.0, 1.0)),
          ("hold-out IoU / maxF / accuracy",
           ("holdout/iou", "holdout/maxF", "holdout/accuracy"), (0.0, 1.0)))


def _read_csv(path: str) -> list[dict[str, str]]:
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def _summary(config: ml_collections.ConfigDict, workdir: str) -> list:
  s = config.synth
  filters = [name for name, on in (("size", s.size_filter),
                                   ("histogram", s.histogram_filter),
                                   ("components", s.components_filter)) if on]
  g = config.generator
  prior = (latent.named_prior(g.latent_prior, g.latent_bound).name
           if g.latent_prior else "the kind's own")
  rows = [("generator", f"{kinds.kind_name(g)} (source {g.source}, "
                        f"{g.resolution} px, z_dim {g.z_dim}, latent prior "
                        f"{prior})"),
          ("direction candidates", config.directions.source),
          ("latents", s.latents),
          ("mask rule", f"{s.mask_rule}, r = {s.shift_radius}"),
          ("filters", ", ".join(filters) or "none"),
          ("U-Net", f"width {config.unet.width}, {config.train.steps} steps, "
                    f"batch {config.train.batch_size}")]
  seconds = wd.stage_seconds(workdir)
  blocks = [doc.Heading("Run"), doc.Table(("setting", "value"), rows)]
  if seconds:
    blocks += [doc.Heading("Time per stage", 3),
               doc.Table(("stage", "wall time"),
                         [(name, monitoring.format_seconds(t))
                          for name, t in seconds.items()]
                         + [("total", monitoring.format_seconds(
                             sum(seconds.values())))])]
  return blocks


def _ranking(config: ml_collections.ConfigDict, workdir: str) -> list:
  path = os.path.join(workdir, "ranking.csv")
  if not os.path.exists(path):
    return [doc.Heading("Direction ranking"),
            doc.Paragraph("No ranking.csv: the score stage has not run.")]
  rows = _read_csv(path)
  ranked = sorted((r for r in rows if r["rank"] not in ("", "-1")),
                  key=lambda r: int(r["rank"]))
  columns = ("rank", "index", "L_h", "D_h", "area", "kept_border",
             "kept_centre", "object_like", "status")
  score = config.score
  blocks = [doc.Heading("Direction ranking"),
            doc.Paragraph(
                "Candidates scored by the two-affine-map fit of the paper's "
                "appendix B. " + ranking.rule_description(
                    score.max_one_class, score.top_fraction, score.top_k,
                    score.order_by, score.choose,
                    objectness.Rule.from_config(score))
                + " config.score.index picks another by hand."),
            doc.Table(columns, [[r.get(c, "") for c in columns]
                                for r in ranked[:RANKING_ROWS]])]
  chosen = _chosen_row(config, rows)
  strips = sorted(glob.glob(os.path.join(workdir, "strips", "*.png")))
  shown = strips[:STRIPS_SHOWN]
  if chosen is not None:
    blocks += _direction_used(config, workdir, chosen)
    mine = [s for s in strips
            if s.endswith(f"index_{int(chosen['index']):03d}.png")]
    shown = mine + [s for s in shown if s not in mine]
  for strip in shown:
    blocks.append(_strip_figure(config, strip))
  return blocks


def _chosen_row(config: ml_collections.ConfigDict,
                rows: list[dict[str, str]]):
  """The ranking.csv row of the direction used: config.score.index, else
  config.score.choose's pick (directions.objectness.choose)."""
  if config.score.index >= 0:
    wanted = str(config.score.index)
  else:
    ranks = np.array([max(0, int(r["rank"] or 0)) for r in rows])
    likes = np.array([r.get("object_like") == "yes" for r in rows])
    pick = objectness.choose(ranks, likes, config.score.choose)
    wanted = rows[pick]["index"] if pick >= 0 else None
  return next((row for row in rows if row["index"] == wanted), None)


def _warning(config: ml_collections.ConfigDict, workdir: str) -> list:
  """At the top: the direction used has masks that are not object-like,
  with the strips of the next ranked candidates to pick another from."""
  path = os.path.join(workdir, "ranking.csv")
  if not os.path.exists(path):
    return []
  rows = _read_csv(path)
  chosen = _chosen_row(config, rows)
  if chosen is None or chosen.get("object_like") != "no":
    return []
  ranked = sorted((r for r in rows if r["rank"]), key=lambda r: int(r["rank"]))
  others = [r for r in ranked if r is not chosen]
  others.sort(key=lambda r: r.get("object_like") != "yes")  # Stable.
  blocks = [doc.Heading("Warning: the direction used may not segment objects"),
            doc.Paragraph(
                f"Its kept synthetic masks (index {chosen['index']}) cover "
                f"{float(chosen['kept_border']):.1%} of the image border and "
                f"{float(chosen['kept_centre']):.1%} of its central quarter: "
                "more like lighting or background than an object "
                "(docs/method.md section 3, \"Objectness\"). The next "
                "candidates' strips follow, object-like ones first; pick one "
                "with --config.score.index=INDEX and run score again.")]
  for row in others[:STRIPS_SHOWN]:
    strip = os.path.join(workdir, "strips", f"rank_{int(row['rank']):02d}_"
                         f"index_{int(row['index']):03d}.png")
    if os.path.exists(strip):
      blocks.append(_strip_figure(config, strip, f"index {row['index']}, "
                                  f"object-like: {row['object_like'] or '?'}"))
  return blocks


def _direction_used(config: ml_collections.ConfigDict, workdir: str,
                    row: dict[str, str]) -> list:
  """Which direction the run used, how it was oriented, what the filters keep."""
  how = ("picked by config.score.index" if config.score.index >= 0
         else f"config.score.choose={config.score.choose}")
  rule = (config.score.orient_rule if config.score.orient
          else "off (config.score.orient=False)")
  fields = [("index (row of directions.npy)", row["index"]),
            ("chosen as", how), ("rank", row["rank"] or "dropped"),
            ("sign (orientation rule: " + rule + ")", row.get("sign", "")),
            ("L_h (restoration loss)", row["L_h"]),
            ("D_h (separation)", row["D_h"])]
  for column, label in (("lighting_area", "lighting mask, share of pixels"),
                        ("border_lighting", "lighting mask, share of border "
                                            "pixels")):
    if column in row:
      fields.append((label, row[column]))
  blocks = [doc.Heading("Direction used", 3),
            doc.Table(("", "value"), fields)]
  path = os.path.join(workdir, pass_rates.RATES_FILE)
  if not os.path.exists(path):
    return blocks + [doc.Paragraph(
        "Filter pass rates: not measured yet (the train stage measures them "
        "before training).")]
  try:
    measured = json.loads(fileio.read_text(path))
    rates = measured["rates"]
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise errors.UserError(
        f"{path}: unreadable ({fileio.why(e)}); remake it with "
        "--config.stages=train --config.force=True") from e
  settings = ", ".join(f"{k} = {v}" for k, v in measured["settings"].items())
  return blocks + [
      doc.Paragraph(f"Filter pass rates of this direction on "
                    f"{rates['samples']} pairs, measured by the train stage "
                    f"before training ({settings}):"),
      doc.Table(("filter", "pairs kept"),
                [("size filter alone", f"{rates['size']:.1%}"),
                 ("histogram filter alone", f"{rates['histogram']:.1%}"),
                 ("every filter (the keep rate)", f"{rates['kept']:.1%}"),
                 ("masks the components filter changed",
                  f"{rates['pruned']:.1%}"),
                 ("mean foreground share of kept masks",
                  f"{rates['foreground']:.1%}"),
                 ("... of their border pixels (low: the object is inside)",
                  f"{rates.get('border', float('nan')):.1%}"),
                 ("... of their central quarter",
                  f"{rates.get('centre', float('nan')):.1%}")])]


def _strip_figure(config: ml_collections.ConfigDict, strip: str,
                  note: str = ""):
  name = os.path.basename(strip)
  steps = config.score.strip_steps
  image = pics.read_png(strip)
  factor = pics.readable_factor(image.shape[1], STRIP_WIDTH)
  return doc.Figure(
      f"strip_{name}", pics.png_bytes(pics.upscale(image, factor)),
      f"{name}" + (f" ({note})" if note else "")
      + (f" (enlarged x{factor})" if factor > 1 else "")
      + ": one latent z per row; columns "
      f"G(z + t h) for t = -{steps}..{steps} (h scaled "
      f"x{config.score.shift_scale:g}), then the lighting mask and the "
      "affine mask (white = foreground).")


def outcome(row: dict[str, str]) -> str:
  """'kept', or 'rejected: <the filters that failed>' from an index.csv row."""
  if row["kept"] == "1":
    return "kept"
  failed = [name for name in ("size", "histogram")
            if row.get(f"{name}_filter") == "fail"]
  return "rejected: " + (", ".join(failed) or "unknown")


def _tile(folder: str, row: dict[str, str]) -> np.ndarray:
  """One sample enlarged, its mask outlined, its file and outcome below."""
  image = pics.read_png(os.path.join(folder, "images", row["file"]))
  mask = pics.read_png(os.path.join(folder, "masks", row["file"]))[..., 0]
  factor = pics.readable_factor(image.shape[0], TILE)
  big = pics.outline(pics.upscale(image, factor),
                     pics.upscale(mask, factor) / 255.0)
  text = outcome(row)
  color = pics.KEPT_COLOR if row["kept"] == "1" else pics.REJECTED_COLOR
  return pics.labelled(big, [(row["file"], (60, 60, 60)), (text, color)])


def _synthetic(config: ml_collections.ConfigDict, workdir: str) -> list:
  folder = os.path.join(workdir, config.export.output_dir)
  index = os.path.join(folder, "index.csv")
  heading = doc.Heading("Synthetic training pairs")
  if not os.path.exists(index):
    return [heading, doc.Paragraph(
        "No synthetic pairs exported (add the synth stage to see them).")]
  rows = _read_csv(index)
  blocks = [heading, doc.Paragraph(
      "Each tile is one generated image G(z), enlarged (nearest neighbour), "
      "with the outline of its synthetic mask in green and, below it, its "
      "file in " + config.export.output_dir + "/ and its own outcome: kept, "
      "or which filter rejected it.")]
  for kept, title in (("1", "kept"), ("0", "rejected")):
    chosen = [r for r in rows if r["kept"] == kept][:config.report.num_samples]
    if not chosen:
      continue
    counts = {}
    for r in chosen:
      counts[outcome(r)] = counts.get(outcome(r), 0) + 1
    caption = (f"{len(chosen)} {title} samples"
               + ("" if kept == "1" else " (" + ", ".join(
                   f"{n} {k.split(': ', 1)[1]}"
                   for k, n in sorted(counts.items())) + ")")
               + ": image with the mask outlined in green.")
    cells = [_tile(folder, r) for r in chosen]
    blocks.append(doc.Figure(
        f"synthetic_{title}.png",
        pics.png_bytes(pics.grid(cells, TILES_PER_ROW)), caption))
  return blocks


def _read_train_metrics(workdir: str) -> list[dict]:
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  records, torn = monitoring.read_metrics(path)
  if torn:
    logging.warning("%s: its last line, cut short by a crash or a full disk, "
                    "is skipped", path)
  marker = wd.read_marker(workdir, "train") or {}
  rows = [r for r in records if r["stage"] == "train"]
  for row in rows:
    if row.get("run") not in (None, marker.get("config_hash")):
      raise errors.UserError(
          f"{path}: the train row of step {row['step']} is from another run "
          f"(config hash {row['run']}, not the {marker.get('config_hash')} "
          f"of {wd.marker_path(workdir, 'train')}); delete the file (the "
          "report then leaves out the training curves)")
  return rows


def _curves(records: list[dict]) -> list:
  """The CURVES panels side by side, from every record that has their keys."""
  records = [dict(r, **{"synth/kept_of_generated": r["synth/kept"]
                         / r["synth/generated"]})
             if r.get("synth/generated") else r for r in records]
  panels = []
  for title, keys, y_range in CURVES:
    series = []
    for key in keys:
      points = [(r["step"], r[key]) for r in records if key in r]
      if points:
        series.append(charts.Series(key, *zip(*points)))
    if series:
      panels.append(charts.line_chart(title, series, y_range=y_range))
  if not panels:
    return []
  return [doc.Figure("training_curves.png",
                     pics.png_bytes(pics.row(panels, panels[0].shape[0], 8)),
                     "Training curves from metrics.jsonl: loss of the "
                     "training batches and of the synthetic hold-out set; "
                     "the fraction of generated candidates the filters kept "
                     "(synth/kept_of_generated) and of batch slots filled "
                     "with a kept sample (kept_fraction); the hold-out "
                     "metrics; all over training steps.")]


def _training(workdir: str) -> list:
  records = _read_train_metrics(workdir)
  last = {}
  for record in records:
    last.update({k: (record["step"], v) for k, v in record.items()
                 if k not in monitoring.ROW_FIELDS})
  if not last:
    return []
  return [doc.Heading("Training")] + _curves(records) + [
          doc.Table(("metric", "step", "value"),
                    [(k, step, f"{v:.4g}") for k, (step, v) in sorted(last.items())])]


def _eval_datasets(workdir: str):
  """eval.json's datasets, or None when the eval stage has not run."""
  path = os.path.join(workdir, "eval.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _prediction_rows(path: str) -> tuple[str, list]:
  """(dataset title, picture rows) of one `<predictor>_samples.npz`."""
  with np.load(io.BytesIO(fileio.read_bytes(path))) as data:
    title = str(data["title"])
    count = sum(1 for k in data.files if k.startswith("image_"))
    return title, [pics.row([data[f"image_{j}"],
                             pics.overlay(data[f"image_{j}"],
                                          data[f"mask_{j}"]),
                             pics.gray_to_rgb(data[f"prob_{j}"]),
                             pics.overlay(data[f"image_{j}"],
                                          data[f"prob_{j}"] / 255.0)], THUMB)
                   for j in range(count)]


def _predictions(workdir: str) -> list:
  document = _eval_datasets(workdir) or {"datasets": {}}
  files = [(entry.get("predictor", "unet"),
            os.path.join(workdir, entry["samples"]))
           for entry in document["datasets"].values() if "samples" in entry]
  files = [(name, path) for name, path in files if os.path.exists(path)]
  blocks = [doc.Heading("Predictions")] if files else []
  for i, (name, path) in enumerate(files):
    try:
      title, rows = _prediction_rows(path)
    except Exception as e:  # pylint: disable=broad-except
      # Whatever numpy, zipfile or the picture helpers raise on a damaged
      # file: one line naming it.
      raise errors.UserError(
          f"{path}: unreadable predictions ({type(e).__name__}: {e}); "
          "remake them with --config.stages=eval --config.force=True") from e
    if rows:
      blocks.append(doc.Figure(
          f"predictions_{i:02d}.png", pics.png_bytes(pics.column(rows)),
          f"{title}: image, ground truth, predicted probability "
          f"({eval_tables.title(name)}), prediction > 0.5."))
  return blocks


def _metrics(workdir: str) -> list:
  document = _eval_datasets(workdir)
  if document is None:
    return [doc.Heading("Metrics"),
            doc.Paragraph("No eval.json: the eval stage has not run.")]
  datasets = document["datasets"]
  names = ("maxF", "IoU", "acc", "MAE")
  rows = []
  for key, entry in datasets.items():
    paper = entry.get("paper") or {}
    main = entry.get("predictor", "unet")
    by_name = entry.get("rows") or {main: entry}
    for name in eval_tables.ordered(by_name, main):
      result = by_name[name]
      theirs = paper if name == eval_tables.UNET else (
          eval_tables.published(key, name, "") or {})
      rows.append([entry.get("title", key), eval_tables.title(name),
                   result["images"]]
                  + [f"{result[n]:.3f}" for n in names]
                  + [" / ".join(f"{theirs[n]:.3f}" for n in ("maxF", "IoU",
                                                             "acc")
                                if n in theirs) or "—"])
  blocks = [doc.Heading("Metrics"),
            doc.Paragraph(
                "Every dataset evaluated in this workdir so far. Baseline rows "
                "(no training: a Gaussian centre prior; wCtr*, Zhu et al. "
                "2014, when configured) ran on the same images through the "
                "same metrics: what the model must beat."),
            doc.Table(("dataset", "predictor", "images") + names
                      + ("published maxF / IoU / acc",), rows)]
  verdicts = eval_tables.verdicts({
      k: dict(v, rows=v.get("rows") or {}) for k, v in datasets.items()})
  blocks += [doc.Paragraph(line) for line in verdicts]
  if document.get("hidden_results"):
    blocks.append(doc.Paragraph(
        f"{document['hidden_results']} older result file(s) in eval/ (other "
        "eval settings or an earlier U-Net) are not shown."))
  return blocks


def _absent(config: ml_collections.ConfigDict) -> list:
  """One line per optional dataset whose files were not found."""
  return [doc.Paragraph(f"Not evaluated: {a.line()}.")
          for a in sources.absent_datasets(config.eval)]


def run(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes W/report.html, W/report.md and W/report_files/."""
  blocks = (_warning(config, workdir) + _summary(config, workdir)
            + _ranking(config, workdir)
            + _synthetic(config, workdir) + _training(workdir)
            + _predictions(workdir) + _metrics(workdir) + _absent(config))
  title = "gansseg_jax report: " + os.path.basename(os.path.abspath(workdir))
  with fileio.atomic_path(os.path.join(workdir, FILES_DIR)) as tmp:
    os.makedirs(tmp)
    for block in blocks:
      if isinstance(block, doc.Figure):
        with open(os.path.join(tmp, block.name), "wb") as f:
          f.write(block.png)
  fileio.write_text(os.path.join(workdir, "report.md"),
                    doc.to_markdown(title, blocks, FILES_DIR))
  fileio.write_text(os.path.join(workdir, "report.html"),
                    doc.to_html(title, blocks))
