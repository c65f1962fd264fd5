"""Adapters for the real APIs, built on first use: `api` hands these to the ProviderRegistry.

Importing this module creates nothing; each factory runs once per process, when a model of its kind is first
called, and the adapters share one provider-keys cache.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from llm_router.providers.base import Provider
from llm_router.settings import get_settings
from llm_router.stores.secrets import ProviderKeys


@cache
def provider_keys() -> ProviderKeys:
    """The process-wide key cache: the provider-keys secret when configured, else environment variables."""
    settings = get_settings()
    return ProviderKeys(settings.provider_keys_secret_id, max_age=settings.provider_keys_max_age_seconds)


def openai_provider() -> Provider:
    from llm_router.providers.openai_compat import OpenAICompatProvider

    return OpenAICompatProvider(provider_keys())


def anthropic_provider() -> Provider:
    from llm_router.providers.anthropic import AnthropicProvider

    return AnthropicProvider(provider_keys())


def bedrock_provider() -> Provider:
    from llm_router.providers.bedrock import BedrockProvider

    return BedrockProvider()


FACTORIES: dict[str, Callable[[], Provider]] = {
    "openai": openai_provider,
    "anthropic": anthropic_provider,
    "bedrock": bedrock_provider,
}
