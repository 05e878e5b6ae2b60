"""Traffic providers, from an environment's `traffic:`: one module per way of splitting requests
between the two slots a rollout alternates between (`command`, `nginx`); Gateway API, Istio or a
cloud load balancer fit the same `apply(split)` shape."""

from __future__ import annotations

from pathlib import Path

from pipeline_kit.config import TrafficConfig
from pipeline_kit.traffic.command import CommandTraffic
from pipeline_kit.traffic.interface import Split, TrafficProvider
from pipeline_kit.traffic.nginx import NginxTraffic

__all__ = ["Split", "TrafficProvider", "open_traffic"]


def open_traffic(config: TrafficConfig, workdir: Path) -> TrafficProvider:
    if config.type == "nginx":
        assert config.upstream_file is not None and config.reload is not None  # checked by the config
        return NginxTraffic(
            workdir / config.upstream_file, config.upstream, config.test, config.reload, workdir, config.timeout
        )
    assert config.command is not None
    return CommandTraffic(config.command, workdir, config.timeout)
