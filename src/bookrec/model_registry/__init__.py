"""Model versions: what each trained model is, where its artifacts are, which one is active.

The database is the truth (`model_versions`, `model_activations`); artifacts live on local
disk under `<var>/models/<number>/`. `ModelRegistry` reads versions and changes which one is
active, always inside the caller's unit of work.
"""
