"""The synthetic hold-out set and its metrics (docs/method.md sections 7 and 8).

A fixed set of synthetic (image, mask) pairs, made once per run with its own
seed (`config.train.holdout_seed`) by the same on-device synthesis as training
(latents -> generator -> mask rule -> filters -> compaction), so it follows the
training distribution but never shares a key with it. It stays on the devices,
batch-sharded, in `ceil(holdout_size / batch_size)` batches of the global
batch size; slots the filters left empty, and slots past `holdout_size`, have
weight 0.

Metrics, over the kept samples i (weight w_i = 1), prediction p = [P(fg) > 0.5]:
  loss      mean_i mean_pixels CE(logits, mask)
  iou       mean_i |p AND m| / |p OR m|   (1 when both are empty)
  accuracy  mean_i mean_pixels [p == m]
"""
import math
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from gansseg_jax.infra import sharding


class HoldoutBatch(NamedTuple):
  images: jax.Array   # [B, H, W, 3], batch-sharded
  masks: jax.Array    # [B, H, W] float32 in {0, 1}
  weights: jax.Array  # [B] float32 in {0, 1}


def pixel_cross_entropy(logits: jax.Array, masks: jax.Array) -> jax.Array:
  """Per-sample mean over pixels of -log softmax(logits)[mask], [B] float32."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  ce = -(masks * logp[..., 1] + (1.0 - masks) * logp[..., 0])
  return ce.mean(axis=(1, 2))


def metric_sums(logits: jax.Array, masks: jax.Array,
                weights: jax.Array) -> dict[str, jax.Array]:
  """Weighted sums of loss, IoU and accuracy of a batch, and sum of weights."""
  pred = logits[..., 1] > logits[..., 0]
  truth = masks > 0.5
  inter = jnp.sum(pred & truth, axis=(1, 2))
  union = jnp.sum(pred | truth, axis=(1, 2))
  iou = jnp.where(union > 0, inter / jnp.maximum(union, 1), 1.0)
  acc = jnp.mean(pred == truth, axis=(1, 2))
  # Empty slots may hold anything (a NaN too): select, do not multiply.
  loss = jnp.where(weights > 0, pixel_cross_entropy(logits, masks), 0.0)
  return {"loss": jnp.sum(weights * loss),
          "iou": jnp.sum(weights * iou),
          "accuracy": jnp.sum(weights * acc),
          "samples": jnp.sum(weights)}


def build(synthesize_batch: Callable[[int], tuple], size: int,
          batch_size: int,
          first_slots: Callable[[jax.Array, int], jax.Array]
          ) -> list[HoldoutBatch]:
  """The hold-out batches; batch b = synthesize_batch(b) without slots >= size.

  `synthesize_batch(b) -> (images, masks, weights, stats)` is the training
  synthesis on the hold-out key (sharded); `first_slots(weights, count)`
  zeroes the weights of slots >= count (jitted by the caller).
  """
  batches = []
  for b in range(math.ceil(size / batch_size)):
    images, masks, weights, _ = synthesize_batch(b)
    weights = first_slots(weights, min(batch_size, size - b * batch_size))
    batches.append(HoldoutBatch(images, masks, weights))
  return batches


def evaluate(batches: Sequence[HoldoutBatch],
             batch_metric_sums: Callable[[HoldoutBatch], dict[str, jax.Array]]
             ) -> dict[str, float]:
  """Mean loss, IoU, accuracy over the kept hold-out samples; their count."""
  totals = None
  for batch in batches:
    sums = batch_metric_sums(batch)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
  totals = {k: float(v) for k, v in sharding.fetch(totals).items()}
  count = totals.pop("samples")
  means = {k: v / max(count, 1.0) for k, v in totals.items()}
  return {**means, "samples": count}
