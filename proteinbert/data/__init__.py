"""Pretraining data: GO ontology, UniRef parsing, dataset storage, episodes."""
