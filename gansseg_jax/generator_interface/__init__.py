"""What every stage knows of a generator, below the stages and the kinds.

kinds.py    the plug-in API of generator kinds: GeneratorKind and its table
            of Sources, BuildOptions, Converted, resolve (config.generator.
            arch), the plug-in module's folder, build
latent.py   Network (a generator as the stages see it), latent priors and
            the latent arithmetic every stage shares: shift, draw, classes
            and noise seeds
"""
