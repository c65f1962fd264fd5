"""Offline side of learned routing: data converters, training (scikit-learn) and evaluation metrics.

Never imported by a Lambda handler; the layer only needs `llm_router.routing.classifier` and the weights file.
"""
