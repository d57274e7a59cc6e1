"""Checkpoints -> Flax params in the workdir, verified; the `embed` stage.

stage.py             stage `convert`: config.generator.arch's kind writes W/generator
load.py              W/generator and W/encoder: save, load_generator (a Network), load_encoder
bigbigan_names.py    the BigBiGAN TF-Hub generator's variables -> params
encoder_map.py       the encoder's variables -> params, by structure
spectral_norm.py     W / sigma from u0 (one power iteration), baked in once
tfhub.py             hub.load, variables, scopes, signatures
torch_checkpoint.py  the authors' BigBiGAN_x1.pth (BigGAN-PyTorch keys)
torch_pickle.py      torch.save files and pickles read with numpy, nothing executed
torch_state_dict.py  read_torch_state_dict: a state dict of a torch file (or wheel)
dcgan_torch.py       a DCGAN-tutorial generator's state dict -> params
embed.py             stage `embed`: W/embeddings.npy

`read_torch_state_dict(path, key=None)` is importable from here for
generator plug-ins (docs/generators.md).
"""
from gansseg_jax.convert.torch_state_dict import read_torch_state_dict
