"""One config file per ablation variant; `baseline.py` is the reference."""
