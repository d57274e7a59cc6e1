"""eval.json and eval.md: our numbers beside the paper's (docs/method.md s. 9).

Every dataset has one row per predictor evaluated on it (the U-Net and the
baselines of gansseg_jax.eval.baselines, on the same images through the same
metrics). eval.md has the paper's table layout: one segmentation table
(maxF_beta | IoU | acc, tables 1-2; MAE and F_beta at the fixed threshold as
extra columns) and one localisation table (MaxBoxAcc where the dataset has
boxes, PxAP; table 3). Cells read "ours / published", "—" where there is
none: the paper's rows for the U-Net, published baseline numbers
(gansseg_jax.eval.paper.BASELINES) for baselines. A sentence names every
dataset where a baseline beats the U-Net's maxF_beta.
"""
from typing import Any, Optional

from gansseg_jax.eval import paper

_DASH = "—"
UNET = "unet"
# How predictors are named in tables.
TITLES = {"unet": "U-Net", "centre_prior": "centre prior", "wctr": "wCtr*",
          "selftrain": "U-Net + self-training",
          "supervised": "supervised ceiling (real masks)"}
# U-Nets trained on real photos (gansseg_jax/train/real.py): not baselines.
REAL_TRAINED = ("selftrain", "supervised")


def _cell(ours: Optional[float], theirs: Optional[float] = None,
          compare: bool = True) -> str:
  text = _DASH if ours is None else f"{ours:.3f}"
  if compare:
    text += " / " + (_DASH if theirs is None else f"{theirs:.3f}")
  return text


def title(predictor: str) -> str:
  return TITLES.get(predictor, predictor)


def ordered(names, main: str) -> list[str]:
  """Row order: the main predictor, then the U-Net, then the rest by name."""
  return sorted(names, key=lambda n: (n != main, n != UNET, n))


def published(key: str, predictor: str, latents: str) -> Optional[dict]:
  """The published numbers beside a row: the paper's for the U-Net."""
  if predictor == UNET:
    return paper.segmentation(key, latents)
  return paper.baseline(key, predictor)


def verdicts(datasets: dict[str, dict[str, Any]]) -> list[str]:
  """One sentence per dataset and baseline whose maxF beats the model's: the
  main predictor's row when it is a U-Net of ours, else the U-Net's."""
  lines = []
  for entry in datasets.values():
    rows = entry["rows"]
    main = (entry["predictor"] if entry["predictor"] in (UNET, "selftrain")
            else UNET)
    if main not in rows:
      continue
    for name, row in rows.items():
      if (name not in (UNET,) + REAL_TRAINED
          and row["maxF"] > rows[main]["maxF"]):
        lines.append(
            f"On {entry['title']} the {title(name)} baseline scores maxFβ "
            f"{row['maxF']:.3f} / IoU {row['IoU']:.3f}, above the "
            f"{title(main)}'s {rows[main]['maxF']:.3f} / "
            f"{rows[main]['IoU']:.3f}: on these images the model does worse "
            "than that baseline.")
  return lines


def build(rows: dict[str, dict[str, dict[str, Any]]], main: str,
          latents: str, settings: dict[str, Any],
          hidden: int = 0) -> tuple[dict[str, Any], str]:
  """(eval.json object, eval.md text) from results by dataset, predictor.

  datasets[key] of eval.json holds the `main` predictor's metrics at the top
  (else the U-Net's, else the first row's) with `predictor` naming it, the
  paper's numbers, and `rows`: every predictor's metrics. `hidden` counts
  result files left out (other settings or an older U-Net).
  """
  datasets = {}
  for key, by_name in rows.items():
    order = ordered(by_name, main)
    first = order[0]
    datasets[key] = dict(by_name[first], predictor=first,
                         paper=paper.segmentation(key, latents),
                         paper_wsol=paper.WSOL.get(key),
                         rows={n: by_name[n] for n in order})
  document = {"latents": latents, "predictor": main, "datasets": datasets,
              "settings": settings, "hidden_results": hidden}

  beta_cut = f"Fβ@{settings['mask_threshold']:g}"
  lines = [
      "# Evaluation",
      "",
      f"Latent sampling `{latents}`: the U-Net's paper numbers come from its "
      f"{paper.ROW_OF_LATENTS.get(latents, 'E-BigBiGAN')} rows where it has "
      "one for the dataset (the row used is named); baselines (no training, "
      "same images, same metrics) show published numbers where we know one. "
      "Cells: ours / published.",
      "",
      "## Segmentation (paper tables 1 and 2)",
      "",
      f"| dataset | predictor | images | maxFβ | IoU | acc | MAE | {beta_cut} "
      "| published row |",
      "|---|---|---:|---:|---:|---:|---:|---:|---|",
  ]
  for key, entry in datasets.items():
    for name, row in entry["rows"].items():
      theirs = published(key, name, latents) or {}
      lines.append(
          f"| {entry['title']} | {title(name)} | {row['images']} "
          f"| {_cell(row['maxF'], theirs.get('maxF'))} "
          f"| {_cell(row['IoU'], theirs.get('IoU'))} "
          f"| {_cell(row['acc'], theirs.get('acc'))} "
          f"| {_cell(row['MAE'], compare=False)} "
          f"| {_cell(row['F_cut'], compare=False)} "
          f"| {theirs.get('row', _DASH)} |")
  found = verdicts(datasets)
  if found:
    lines += [""] + found
  lines += [
      "",
      "## Localisation (paper table 3)",
      "",
      "| dataset | predictor | MaxBoxAcc | PxAP |",
      "|---|---|---:|---:|",
  ]
  for key, entry in datasets.items():
    for name, row in entry["rows"].items():
      theirs = (entry["paper_wsol"] or {}) if name == UNET else {}
      box = (_cell(row["MaxBoxAcc"], theirs.get("MaxBoxAcc"))
             if "MaxBoxAcc" in row else _DASH)
      lines.append(f"| {entry['title']} | {title(name)} | {box} "
                   f"| {_cell(row['PxAP'], theirs.get('PxAP'))} |")
  lines += [
      "",
      f"PxAP averages precision and recall over `{settings['pxap_average']}`; "
      f"MaxBoxAcc needs ground-truth boxes. The paper's table 3 also has "
      f"{paper.WSOL_NOT_WIRED} (datasets not wired here).",
  ]
  skipped = {key: entry["skipped"] for key, entry in datasets.items()
             if any(entry["skipped"].values())}
  if skipped:
    lines += ["", "Skipped or repaired files: " + "; ".join(
        f"{datasets[k]['title']}: " + ", ".join(
            f"{n} {kind}" for kind, n in counts.items() if n)
        for k, counts in skipped.items()) + "."]
  if hidden:
    lines += ["", f"{hidden} older result file(s) under eval/ (other eval "
              "settings or an earlier U-Net) are kept but not shown."]
  return document, "\n".join(lines) + "\n"
