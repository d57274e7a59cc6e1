"""eval.json and eval.md: our numbers beside the paper's (docs/method.md s. 9).

eval.md has the paper's table layout: one segmentation table (maxF_beta |
IoU | acc per dataset, tables 1-2; MAE and F_beta at the fixed threshold as
extra columns) and one localisation table (MaxBoxAcc where the dataset has
boxes, PxAP; table 3). Cells read "ours / paper", "—" where there is none.
"""
from typing import Any, Optional

from gansseg_jax.eval import paper

_DASH = "—"


def _cell(ours: Optional[float], theirs: Optional[float] = None,
          compare: bool = True) -> str:
  text = _DASH if ours is None else f"{ours:.3f}"
  if compare:
    text += " / " + (_DASH if theirs is None else f"{theirs:.3f}")
  return text


def build(results: dict[str, dict[str, Any]], latents: str,
          settings: dict[str, Any]) -> tuple[dict[str, Any], str]:
  """(eval.json object, eval.md text) from evaluate_source results by key."""
  datasets = {}
  for key, result in results.items():
    datasets[key] = dict(result, paper=paper.segmentation(key, latents),
                         paper_wsol=paper.WSOL.get(key))
  document = {"latents": latents, "datasets": datasets, "settings": settings}

  beta_cut = f"Fβ@{settings['mask_threshold']:g}"
  lines = [
      "# Evaluation",
      "",
      f"Latent sampling `{latents}`: paper numbers come from its "
      f"{paper.ROW_OF_LATENTS.get(latents, 'E-BigBiGAN')} rows where it has "
      "one for the dataset (the row used is named). Cells: ours / paper.",
      "",
      "## Segmentation (paper tables 1 and 2)",
      "",
      f"| dataset | images | maxFβ | IoU | acc | MAE | {beta_cut} "
      "| paper row |",
      "|---|---:|---:|---:|---:|---:|---:|---|",
  ]
  for key, entry in datasets.items():
    theirs = entry["paper"] or {}
    lines.append(
        f"| {entry['title']} | {entry['images']} "
        f"| {_cell(entry['maxF'], theirs.get('maxF'))} "
        f"| {_cell(entry['IoU'], theirs.get('IoU'))} "
        f"| {_cell(entry['acc'], theirs.get('acc'))} "
        f"| {_cell(entry['MAE'], compare=False)} "
        f"| {_cell(entry['F_cut'], compare=False)} "
        f"| {theirs.get('row', _DASH)} |")
  lines += [
      "",
      "## Localisation (paper table 3)",
      "",
      "| dataset | MaxBoxAcc | PxAP |",
      "|---|---:|---:|",
  ]
  for key, entry in datasets.items():
    theirs = entry["paper_wsol"] or {}
    box = (_cell(entry["MaxBoxAcc"], theirs.get("MaxBoxAcc"))
           if "MaxBoxAcc" in entry else _DASH)
    lines.append(f"| {entry['title']} | {box} "
                 f"| {_cell(entry['PxAP'], theirs.get('PxAP'))} |")
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
  return document, "\n".join(lines) + "\n"
