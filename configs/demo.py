r"""The built-in demo: the whole method on a laptop CPU, no network.

  make demo      # = python -m gansseg_jax.main --config=configs/demo.py --workdir=runs/demo

Runs every stage that is built so far on the small generator shipped in the
package (trained on procedural scenes, see gansseg_jax/assets/demo_generator/).
"""
from configs import default


def get_config():
  c = default.get_config()
  c.stages = "convert,discover,score,train,eval,report"
  c.generator.source = "builtin"
  return c
