"""config.generator.matmul_precision: the precision every generator kind asks
for in its float32 matmuls and convolutions, read from the lowered HLO."""
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from gansseg_jax.run import config_checks
from gansseg_jax.infra import errors
from gansseg_jax.run import stages
from gansseg_jax.infra import workdir
from gansseg_jax.models import biggan
from gansseg_jax.models import biggan_deep
from gansseg_jax.generator_interface import kinds
from gansseg_jax.generator_interface import latent
from gansseg_jax.models import imagenet_biggan
from gansseg_jax.models import stylegan2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VALUES = ("highest", "high", "default")
BATCH = 2

BIGGAN = biggan.BigGANSpec(resolution=32, z_dim=24, ch=4, shared_dim=8,
                           attention_resolution=16, bn_eps=1e-4)
# (kind, spec, extra BuildOptions fields, dots + convolutions counted by hand).
# BigGAN-32: z_linear 1; per block 2 HyperBNs x 2 dots + 3 convs (x3 blocks);
# attention 4 convs + 2 einsums; out conv 1. ImageNet BigGAN: + the class
# embedding dot. BigGAN-deep-32 (no attention): embedding 1, z_linear 1; per
# block 4 BNs x 2 dots + 4 convs (x6 blocks, 2 per doubling); out conv 1.
# StyleGAN2 16 px in w (mapping in the prior): 2 mapping dots; per modulated
# layer affine + demodulation + conv, + FIR after each up conv (5 layers, 2
# up); per toRGB affine + einsum (x3); FIR upsampling of the image twice.
KINDS = {
    "biggan": (BIGGAN.to_dict(), {}, 29),
    "biggan_imagenet": (imagenet_biggan.ImageNetBigGANSpec(
        resolution=32, z_dim=24, ch=4, shared_dim=8, n_classes=5,
        attention_resolution=16).to_dict(), {}, 30),
    "biggan_deep": (biggan_deep.BigGANDeepSpec(
        resolution=32, z_dim=8, ch=8, n_classes=5,
        attention_resolution=0).to_dict(), {}, 75),
    "stylegan2": (stylegan2.StyleGAN2Spec(
        resolution=16, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64,
        channel_max=16).to_dict(), {"latent_space": "w"}, 27),
}
INSTRUCTION = re.compile(r"= \S+ (dot|convolution)\(")
PRECISION = re.compile(r"operand_precision=\{(\w+),(\w+)\}")


def network(arch, **options):
  spec, extra, _ = KINDS[arch]
  return kinds.build(kinds.resolve(arch), spec,
                     kinds.BuildOptions(**extra, **options))


def lowered_hlo(net) -> str:
  """HLO of latents drawn (the kind's prior included) then generated."""
  def sample_and_generate(params, key):
    return net(params, latent.draw(net, params, key, (BATCH,), 0))
  return jax.jit(sample_and_generate).lower(
      net.abstract_params, jax.random.key(0)).as_text(dialect="hlo")


def precisions(hlo: str) -> list:
  """One entry per dot/convolution: its operand_precision, or None."""
  found = []
  for line in hlo.splitlines():
    if INSTRUCTION.search(line):
      match = PRECISION.search(line)
      found.append(match.groups() if match else None)
  return found


@pytest.mark.parametrize("arch", sorted(KINDS))
def test_every_float32_matmul_and_conv_asks_for_the_configured_precision(
    arch):
  expected_count = KINDS[arch][2]
  for value in VALUES:
    found = precisions(lowered_hlo(network(arch, matmul_precision=value)))
    assert len(found) == expected_count, (value, len(found))
    if value == "default":
      assert found == [None] * expected_count, found
    else:
      assert found == [(value, value)] * expected_count, (value, found)


@pytest.mark.parametrize("arch", sorted(KINDS))
def test_bfloat16_generators_are_the_same_program_for_every_value(arch):
  texts = [lowered_hlo(network(arch, dtype="bfloat16", matmul_precision=v))
           for v in VALUES]
  assert texts[1] == texts[0] and texts[2] == texts[0]
  found = precisions(texts[0])
  # The float32 side computations keep HIGHEST, the bfloat16 ones one pass.
  assert ("highest", "highest") in found and None in found


def test_demo_generator_has_no_explicit_precision_and_ignores_the_value():
  kind = kinds.resolve("builtin")
  spec = kind.source("builtin").read(default.get_config(), "").spec
  texts = [lowered_hlo(kinds.build(kind, spec,
                                   kinds.BuildOptions(matmul_precision=v)))
           for v in VALUES]
  assert texts[1] == texts[0] and texts[2] == texts[0]
  found = precisions(texts[0])
  assert found and found == [None] * len(found)


def test_highest_is_what_a_config_without_the_field_builds_bit_for_bit():
  config = default.get_config()
  assert config.generator.matmul_precision == "highest"
  del config.generator["matmul_precision"]
  options = kinds.build_options(config.generator)
  assert options.matmul_precision == "highest"
  params = biggan.init_params(BIGGAN, 0)
  z = np.random.default_rng(1).normal(size=(BATCH, BIGGAN.z_dim)).astype(
      np.float32)
  before = jax.jit(biggan.make_generate(BIGGAN))  # The call from before.
  built = kinds.build(kinds.resolve("biggan"), BIGGAN.to_dict(), options)
  assert jax.jit(built.generate).lower(params, z).as_text() == (
      before.lower(params, z).as_text())
  np.testing.assert_array_equal(np.asarray(jax.jit(built.generate)(params, z)),
                                np.asarray(before(params, z)))


def test_bfloat16_images_do_not_depend_on_the_value():
  params = biggan.init_params(BIGGAN, 2)
  z = np.random.default_rng(3).normal(size=(BATCH, BIGGAN.z_dim)).astype(
      np.float32)
  images = [np.asarray(jax.jit(network("biggan", dtype="bfloat16",
                                       matmul_precision=v))(params, z))
            for v in VALUES]
  assert images[0].dtype == np.float32 and np.isfinite(images[0]).all()
  np.testing.assert_array_equal(images[1], images[0])
  np.testing.assert_array_equal(images[2], images[0])


def test_float32_precision_maps_names_and_rejects_others():
  assert biggan.float32_precision("high", jnp.float32) == (
      jax.lax.Precision.HIGH)
  assert biggan.float32_precision("default", jnp.bfloat16) == (
      jax.lax.Precision.HIGHEST)
  with pytest.raises(ValueError, match="^matmul_precision: 'HIGH' is not"):
    biggan.float32_precision("HIGH", jnp.float32)


def test_a_bad_value_is_one_line_naming_the_field_in_the_config_checks():
  config = default.get_config()
  config.generator.matmul_precision = "fastest"
  with pytest.raises(errors.UserError) as raised:
    config_checks.check_values(config)
  assert str(raised.value) == (
      "config.generator.matmul_precision: 'fastest' is not one of "
      "('highest', 'high', 'default')")


def test_a_bad_value_on_the_command_line_exits_2_and_writes_nothing(tmp_path):
  work = tmp_path / "w"
  proc = subprocess.run(
      [sys.executable, "-m", "gansseg_jax.main",
       f"--config={ROOT}/configs/test.py", f"--workdir={work}",
       "--config.generator.matmul_precision=tf32"],
      capture_output=True, text=True, cwd=tmp_path, timeout=120)
  assert proc.returncode == 2, proc.stderr
  assert [line for line in proc.stderr.splitlines()
          if line.startswith("error:")] == [
              "error: config.generator.matmul_precision: 'tf32' is not one "
              "of ('highest', 'high', 'default')"], proc.stderr
  assert "Traceback" not in proc.stderr
  assert not work.exists()


def test_old_workdirs_keep_their_hashes_and_a_new_value_moves_them():
  config = default.get_config()
  config.generator.arch, config.generator.source = "biggan", "random"
  with_default = workdir.config_to_dict(config)
  without = workdir.config_to_dict(config)
  del without["generator"]["matmul_precision"]
  for stage in stages.STAGES:
    assert stages.stage_hash(stage, with_default) == (
        stages.stage_hash(stage, without)), stage.name
  high = workdir.config_to_dict(config)
  high["generator"]["matmul_precision"] = "high"
  for stage in stages.STAGES:  # Each reads the generator or its outputs.
    assert stages.stage_hash(stage, high) != (
        stages.stage_hash(stage, with_default)), stage.name
