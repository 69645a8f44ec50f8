"""Pretraining: losses, optimizer, state, update step, checkpoints, loop."""
