"""Which adapter serves a catalog model; adapters are created lazily, once per process."""

from __future__ import annotations

from collections.abc import Callable

from llm_router.providers.base import Provider, ProviderAuthError
from llm_router.providers.simulated import SimulatedProvider
from llm_router.schemas.catalog import ModelSpec

Factory = Callable[[], Provider]


class ProviderRegistry:
    """Maps a model's `provider` to an adapter; with `simulate_all`, every model is simulated."""

    def __init__(self, *, simulate_all: bool = False, factories: dict[str, Factory] | None = None) -> None:
        self.simulate_all = simulate_all
        self._factories: dict[str, Factory] = {"simulated": SimulatedProvider, **(factories or {})}
        self._instances: dict[str, Provider] = {}

    def register(self, name: str, provider: Provider) -> None:
        self._instances[name] = provider

    def for_model(self, model: ModelSpec) -> Provider:
        name = "simulated" if self.simulate_all else model.provider
        provider = self._instances.get(name)
        if provider is None:
            factory = self._factories.get(name)
            if factory is None:
                raise ProviderAuthError(f"no adapter for provider {name!r} is installed")
            provider = self._instances[name] = factory()
        return provider
