"""proteinbert-jax: ProteinBERT (Brandes et al., Bioinformatics 2022) in JAX + Haiku."""

import setuptools

# Ranges known to work together (dm-haiku is in maintenance mode; see WORKSPACE_NOTES.md).
INSTALL_REQUIRES = [
    'absl-py>=1.0',
    'chex>=0.1.86,<0.2',
    'dm-haiku>=0.0.13,<0.0.18',
    'h5py>=3.8',
    'jax>=0.4.35,<0.11',
    'jaxlib>=0.4.35,<0.11',
    'jmp>=0.0.4,<0.1',
    'ml_collections>=0.1.1,<2',
    'numpy>=1.24,<3',
    'optax>=0.2.4,<0.3',
    'tensorboardX>=2.6',
]

# Plots drawn by experiments/ (ablation runner, benchmarks, pretraining
# curves, attention maps); the library itself draws nothing.
_PLOTS = ['matplotlib>=3.7']

EXTRAS_REQUIRE = {
    'experiments': _PLOTS,
    'test': _PLOTS + [
        'hypothesis>=6',
        'pytest>=7',
        'scikit-learn>=1.2',
        'scipy>=1.10',
    ],
    # Running experiments/notebooks/ headless.
    'notebook': [
        'ipykernel',
        'nbclient',
    ],
    # Parity with the original Keras package. The original's own wheel is
    # fetched separately with `pip download --no-deps protein-bert==1.0.1`
    # (it installs a top-level `proteinbert` package that would shadow ours).
    'parity': [
        # The original's model-loading path (model_generation) imports it.
        'pandas>=1.5',
        'tensorflow-cpu>=2.15',
        'tf-keras>=2.15',
    ],
}

setuptools.setup(
    name='proteinbert-jax',
    version='0.1.0',
    description='ProteinBERT protein language model in JAX + dm-haiku.',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    license='MIT',
    python_requires='>=3.10',
    packages=setuptools.find_packages(include=['proteinbert', 'proteinbert.*', 'experiments', 'experiments.*']),
    package_data={
        'proteinbert': ['weights/*.npz', 'weights/*.json', 'weights/*.fasta'],
        'proteinbert.data': ['demo/*.h5', 'demo/README.md'],
    },
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
