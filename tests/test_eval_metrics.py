"""Saliency metrics against pysodmetrics and a brute-force numpy loop."""
import warnings

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import py_sod_metrics
import pytest

from gansseg_jax.eval import metrics

BETA2 = 0.3


def brute_force(probs_list, truths, num_thresholds, cut):
  """docs/method.md section 8, one image and one threshold at a time."""
  thresholds = np.arange(num_thresholds, dtype=np.float32) / np.float32(
      num_thresholds)
  f_curves, iou, acc, f_cut, mae = [], [], [], [], []

  def f_of(pred, truth):
    tp, pp, g = (pred & truth).sum(), pred.sum(), truth.sum()
    precision = tp / pp if pp else 1.0
    recall = tp / g if g else 1.0
    denominator = BETA2 * precision + recall
    if not denominator:
      return 0.0
    return (1 + BETA2) * precision * recall / denominator

  for probs, truth in zip(probs_list, truths):
    f_curves.append([f_of(probs > t, truth) for t in thresholds])
    pred = probs > np.float32(cut)
    union = (pred | truth).sum()
    iou.append((pred & truth).sum() / union if union else 1.0)
    acc.append((pred == truth).mean())
    f_cut.append(f_of(pred, truth))
    mae.append(np.abs(probs.astype(np.float64) - truth).mean())
  f_mean = np.mean(f_curves, axis=0)
  return {"maxF": f_mean.max(), "maxF_threshold": thresholds[f_mean.argmax()],
          "IoU": np.mean(iou), "acc": np.mean(acc), "F_cut": np.mean(f_cut),
          "MAE": np.mean(mae), "f_curve": f_mean}


def random_case(seed):
  """Images of random sizes, with empty and full truths and predictions."""
  rng = np.random.default_rng(seed)
  probs_list, truths = [], []
  for _ in range(rng.integers(1, 5)):
    h, w = rng.integers(1, 41, size=2)
    kind = rng.integers(4)
    if kind == 0:  # Values exactly on the threshold grid.
      probs = rng.integers(0, 256, (h, w)).astype(np.float32) / np.float32(255)
    elif kind == 1:  # An empty prediction at every threshold.
      probs = np.zeros((h, w), np.float32)
    else:
      probs = rng.random((h, w), dtype=np.float32)
    truth_kind = rng.integers(4)
    if truth_kind == 0:
      truth = np.zeros((h, w), bool)
    elif truth_kind == 1:
      truth = np.ones((h, w), bool)
    else:
      truth = rng.random((h, w)) < rng.random()
    probs_list.append(probs)
    truths.append(truth)
  return probs_list, truths


def run(probs_list, truths, num_thresholds=255, budget=2**22):
  m = metrics.SaliencyMetrics(num_thresholds, BETA2, 0.5, budget)
  for p, g in zip(probs_list, truths):
    m.add(p, g)
  return m.result(), m.curves()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_matches_brute_force_with_empty_conventions(seed):
  probs_list, truths = random_case(seed)
  ours, curves = run(probs_list, truths)
  expected = brute_force(probs_list, truths, 255, 0.5)
  np.testing.assert_allclose(curves["f"], expected["f_curve"], atol=1e-12)
  for name in ("maxF", "IoU", "acc", "F_cut"):
    assert ours[name] == pytest.approx(expected[name], abs=1e-12), name
  assert ours["MAE"] == pytest.approx(expected["MAE"], abs=1e-6)
  assert ours["images"] == len(probs_list)


def test_empty_conventions_planted():
  """Empty truth and empty prediction: P = R = 1, so F = 1 and IoU = 1."""
  zeros = np.zeros((5, 7), np.float32)
  ours, curves = run([zeros], [zeros > 0])
  assert ours["maxF"] == 1.0 and ours["IoU"] == 1.0 and ours["acc"] == 1.0
  assert np.all(curves["precision"] == 1.0) and np.all(curves["recall"] == 1.0)
  # Empty truth, full prediction: precision 0 at low thresholds -> F = 0.
  ours, curves = run([np.ones((5, 7), np.float32)], [zeros > 0])
  assert np.all(curves["f"] == 0.0) and ours["IoU"] == 0.0


def test_batching_does_not_change_results():
  """Large images (several padded lengths) with budget 1 image vs many."""
  rng = np.random.default_rng(3)
  shapes = [(70, 90), (3, 5), (130, 40), (64, 64), (65, 64), (70, 90)]
  probs_list = [rng.random(s, dtype=np.float32) for s in shapes]
  truths = [rng.random(s) < 0.3 for s in shapes]
  small, small_curves = run(probs_list, truths, budget=4096)
  large, large_curves = run(probs_list, truths, budget=2**22)
  for name in ("maxF", "IoU", "acc", "F_cut"):
    assert small[name] == pytest.approx(large[name], abs=1e-12)
  assert small["MAE"] == pytest.approx(large["MAE"], abs=1e-7)
  np.testing.assert_allclose(small_curves["pooled_precision"],
                             large_curves["pooled_precision"])


def test_maxf_and_mae_match_pysodmetrics():
  """Identical predictions: uint8 maps u for pysodmetrics, u / 255 for us.

  pysodmetrics quantises to uint8 and thresholds at [u >= j], j = 0..255, so
  our [p > k/255] is its j = k + 1 and our curve is its curve[254::-1] (its
  extra j = 0 predicts every pixel). Its empty conventions differ (precision
  0 for an empty prediction, recall 0 for an empty truth) but give the same F
  whenever the truth is not empty, as here. Each map holds 0 and 255 so its
  min-max normalisation is the identity.
  """
  rng = np.random.default_rng(0)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Fmeasure's deprecation notice.
    fm, mae = py_sod_metrics.Fmeasure(beta=BETA2), py_sod_metrics.MAE()
  probs_list, truths = [], []
  for i in range(6):
    h, w = rng.integers(20, 90, size=2)
    u = rng.integers(0, 256, (h, w)).astype(np.uint8)
    u[0, 0], u[0, 1] = 0, 255
    if i == 0:
      u[1:] = 0  # Mostly empty predictions.
    gt = np.zeros((h, w), np.uint8)
    gt[h // 4: h // 2 + 1, rng.integers(0, w // 2):] = 255
    fm.step(u, gt)
    mae.step(u, gt)
    probs_list.append(u.astype(np.float32) / np.float32(255))
    truths.append(gt > 127)
  reference = fm.get_results()["fm"]["curve"]
  ours, curves = run(probs_list, truths)
  np.testing.assert_allclose(curves["f"], reference[254::-1], atol=1e-12)
  assert ours["maxF"] == pytest.approx(reference[:255].max(), abs=1e-12)
  assert ours["MAE"] == pytest.approx(mae.get_results()["mae"], abs=1e-6)


def test_rejects_mismatched_shapes():
  m = metrics.SaliencyMetrics(255, BETA2, 0.5, 2**22)
  with pytest.raises(ValueError):
    m.add(np.zeros((4, 5), np.float32), np.zeros((5, 4), bool))
