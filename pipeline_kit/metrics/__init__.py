"""Metric providers, by name from `metrics:` in the config: one module per backend.

Only `prometheus` today; a provider is an implementation of `MetricProvider.measure` (one value
at one instant), so Datadog, CloudWatch or Graphite fit the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline_kit.config import Config
from pipeline_kit.errors import ConfigError, EnvironmentFailure
from pipeline_kit.metrics.interface import Measurement, MetricProvider
from pipeline_kit.metrics.prometheus import Prometheus

__all__ = ["Measurement", "MetricProvider", "open_provider"]


def open_provider(config: Config, name: str, env: Mapping[str, str]) -> MetricProvider:
    """The provider `name`, with its secrets read from the environment now (a missing one is an
    error naming the variable, never a query without its credentials)."""
    provider = config.metrics.get(name)
    if provider is None:
        known = ", ".join(sorted(config.metrics)) or "none configured"
        raise ConfigError(config.source_path or "pipeline-kit.yml", None, f"metrics: no provider {name!r} ({known})")
    headers = {}
    for header, variable in provider.headers.items():
        if not env.get(variable):
            raise EnvironmentFailure(f"metrics.{name}.headers.{header}: the variable {variable} is not set")
        headers[header] = env[variable]
    if provider.token_variable:
        token = env.get(provider.token_variable)
        if not token:
            variable = provider.token_variable
            raise EnvironmentFailure(f"metrics.{name}.token-variable: the variable {variable} is not set")
        headers["Authorization"] = f"Bearer {token}"
    return Prometheus(name, provider.url, headers=headers, timeout=provider.timeout, ca_file=provider.ca_file)
