"""Shared test set-up."""

import os

# Keras parity tests need the legacy (tf-keras) Keras 2 API, which the
# original package was written for; it must be chosen before TensorFlow loads.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
