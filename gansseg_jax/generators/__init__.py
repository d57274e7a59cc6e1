"""Generator kinds behind config.generator.arch (generator_interface/kinds.py).

bigbigan.py   'biggan': BigBiGAN's generator from TF-Hub, the authors' .pth
              (BigGAN-PyTorch keys) or random weights; writes W/encoder too
demo.py       'builtin' / 'demo': the demo DCGAN shipped in the package
imagenet_biggan.py  'biggan_imagenet': class-conditional ImageNet BigGAN
biggan_deep.py      'biggan_deep': BigGAN-deep
dcgan.py            'dcgan': PyTorch DCGAN-tutorial generators (a state dict or wheel)
stylegan2.py        'stylegan2': StyleGAN2 config F (NVlabs .pkl, rosinality .pt)
readers.py          the source readers they share: a checkpoint file, a TF-Hub
                    module, random weights
"""
