"""What CDK leaves out of the function and layer uploads; plain Python, so the benchmark's size count uses it too."""

from __future__ import annotations

# The CLI, the local server and model training run on laptops only; caches and packaging metadata are noise.
# Of `ml`, only the pure-Python fitting of adaptations (and the routing metrics it measures with) ships: the
# scheduled adapt function runs it.
LAYER_EXCLUDES = [
    "python/llm_router/cli",
    "python/llm_router/local",
    "python/llm_router/ml/*",
    "!python/llm_router/ml/__init__.py",
    "!python/llm_router/ml/adapt.py",
    "!python/llm_router/ml/metrics.py",
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    "requirements*.txt",
]
CODE_EXCLUDES = ["__pycache__", "*.pyc"]
