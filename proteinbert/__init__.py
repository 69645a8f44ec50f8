"""ProteinBERT in JAX + Haiku."""
