"""How many calls the dispatcher keeps in flight per analysis stage: as many as the model deployment
of that stage can take at its most replicas (``max_replicas x max_ongoing_requests``), shared by the
dispatcher replicas.

This is how a backlog reaches the autoscalers. A dispatcher sends up to its slots of calls to the
``whisper`` handle (transcription) and to the ``llm`` endpoint (scoring). What the running replicas
cannot take yet waits in the handle's queue, and Serve's autoscaler counts queued requests as well as
running ones (``RAY_SERVE_COLLECT_AUTOSCALING_METRICS_ON_HANDLE``, on by default). Replicas above
``target_ongoing_requests`` are added, and the Ray autoscaler starts the GPU nodes that they need.
A backlog deeper than the slots adds nothing more, because by then every replica the config allows
is asked for. ``docs/scaling.md`` ("Backlog-driven scaling") records this choice.

The slots are set on the dispatcher's args by every launch path: ``callcov-serve`` (``run.py``),
``deployments.deploy`` and ``deployments.kuberay``. Explicit ``transcription_slots`` and
``scoring_slots`` args are kept.

Scale-to-zero: whisper may have ``min_replicas: 0`` only when the config declares its cold start
(``cold_start_s``: node start, image pull, weights, model load). The cold start must fit in the time
the dispatcher waits for a transcription (``TRANSCRIPTION_TIMEOUT_S``). Otherwise the first calls of
a backlog would time out while the GPU node boots.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from deployments import db_pools

# Serve's default max_ongoing_requests (ray.serve._private.constants.DEFAULT_MAX_ONGOING_REQUESTS).
DEFAULT_MAX_ONGOING = 5
# How long the dispatcher waits for one transcription (deployments.inference.ServeTranscriber).
TRANSCRIPTION_TIMEOUT_S = 1800.0
STAGES = {"transcription_slots": "whisper", "scoring_slots": "llm"}


class CapacityError(ValueError):
    """The config's stages cannot be given slots (a scale-to-zero without a cold start, say)."""


def max_replicas(args: dict[str, Any]) -> int:
    """The most replicas an app's args allow: Serve's ``num_replicas``/``autoscaling_config``, or the
    ``llm`` app's own ``max_replicas`` (``deployments.llm.VLLMArgs``)."""
    if "max_replicas" in args:
        return int(args["max_replicas"])
    return db_pools.max_replicas(args)


def app_capacity(args: dict[str, Any]) -> int:
    """The calls an application's replicas take at once, at the most replicas its args allow."""
    return max_replicas(args) * int(args.get("max_ongoing_requests", DEFAULT_MAX_ONGOING))


def _apps(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {app["name"]: app.get("args") or {} for app in config.get("applications", [])}


def min_replicas(args: dict[str, Any]) -> int:
    if "min_replicas" in args:
        return int(args["min_replicas"])
    scaling = args.get("autoscaling_config") or {}
    return int(scaling.get("min_replicas", 1)) if scaling else max_replicas(args)


def check_cold_start(whisper: dict[str, Any]) -> None:
    if min_replicas(whisper) > 0:
        return
    cold_start_s = whisper.get("cold_start_s")
    if cold_start_s is None:
        raise CapacityError(
            "whisper scales to zero (min_replicas: 0) without cold_start_s: declare how long a replica "
            "takes to come up from nothing (node, image, weights, model load), or keep min_replicas >= 1"
        )
    if float(cold_start_s) >= TRANSCRIPTION_TIMEOUT_S:
        raise CapacityError(
            f"whisper's cold start ({cold_start_s} s) does not fit in the {TRANSCRIPTION_TIMEOUT_S:.0f} s "
            "the dispatcher waits for a transcription: keep min_replicas >= 1"
        )


def stage_slots(config: dict[str, Any]) -> dict[str, int]:
    """Each dispatcher replica's slots per stage (``transcription_slots``, ``scoring_slots``)."""
    apps = _apps(config)
    dispatchers = max(1, max_replicas(apps.get("dispatcher", {})))
    if "whisper" in apps:
        check_cold_start(apps["whisper"])
    return {
        slots: math.ceil(app_capacity(apps[app]) / dispatchers)
        for slots, app in STAGES.items()
        if app in apps
    }


def apply_slots(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` whose dispatcher args carry the slots (explicit ones kept)."""
    slots = stage_slots(config)
    config = copy.deepcopy(config)
    for app in config.get("applications", []):
        if app.get("name") == "dispatcher":
            app["args"] = {**slots, **(app.get("args") or {})}
    return config
