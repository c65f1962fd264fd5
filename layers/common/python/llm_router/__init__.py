"""llm-router: an OpenAI-compatible LLM gateway that picks a model per request, falls back, and reports cost."""

__version__ = "0.1.0"
