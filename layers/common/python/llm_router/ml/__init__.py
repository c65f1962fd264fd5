"""Offline side of learned routing: data converters, training (scikit-learn) and evaluation metrics.

The router's handlers never import it; the layer ships only `ml/adapt.py` and `ml/metrics.py`, which the scheduled
adapt function runs (pure Python), besides `llm_router.routing.classifier` and its weights file.
"""
