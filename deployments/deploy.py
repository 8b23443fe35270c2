"""Deploy a Serve config to a running cluster, with the settings and secrets from the operator's side.

``python -m deployments.deploy --config configs/serve.gpu.yaml [--secrets-command CMD]``

1. Reads the ``CALLCOV_*`` settings that ``callcov.config`` knows (and the standard AWS variables) from
   the operator's environment, then from ``--secrets-command`` (a secret store's CLI that prints a JSON
   object or ``NAME=value`` lines), which wins. Other ``CALLCOV_*`` names are reported and left out.
2. Refuses to go on while a production setting is missing or a placeholder, listing every one.
3. Sizes each replica's database pool from the replica counts (``deployments.db_pools``).
4. PUTs the config, with the variables as each application's ``runtime_env.env_vars``, to the Serve
   REST API of the dashboard (``/api/serve/applications/``), by default ``http://127.0.0.1:8265``: the
   end of the SSH tunnel that ``ray dashboard ray-cluster.yaml`` opens.

Nothing is written to disk here. On the cluster, Ray keeps the config in the GCS, shows it to whoever
reaches the dashboard, and its runtime-env agent logs each runtime env on the nodes (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import yaml
from pydantic import BaseModel, ValidationError

from callcov.config import Settings
from deployments.capacity import CapacityError, apply_slots
from deployments.db_pools import PoolBudgetError, apply_pools

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
# Read from the environment besides the settings: S3 credentials (when no instance role) and the
# weights' source.
EXTRA_NAMES = frozenset(
    {
        "CALLCOV_INFERENCE__MODEL_DIR",
        "CALLCOV_MODELS_DIR",
        "CALLCOV_WEIGHTS_SOURCE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
    }
)
# What a cluster cannot run without (each node would otherwise keep its own SQLite file, audio folder
# and development secrets).
REQUIRED = {
    "CALLCOV_DB__URL": "the PostgreSQL every replica shares",
    "CALLCOV_REDIS__URL": "rate limits and wake-ups shared by the replicas",
    "CALLCOV_STORAGE__BACKEND": "s3: audio in a bucket that every node reads",
    "CALLCOV_STORAGE__S3_BUCKET": "the audio bucket",
    "CALLCOV_AUTH__JWT_SECRET": "signs access tokens",
    "CALLCOV_AUTH__API_KEY_PEPPER": "hashes API keys",
    "CALLCOV_WEBHOOKS__ENCRYPTION_KEYS": "encrypt webhook signing secrets at rest",
    "CALLCOV_INFERENCE__LLM_API_KEY": "the internal credential of the llm application",
}
SECRET_HINTS = ("SECRET", "KEY", "PEPPER", "PASSWORD", "TOKEN", "URL")


class DeployError(RuntimeError):
    pass


def setting_names() -> frozenset[str]:
    """``CALLCOV_<FIELD>`` and ``CALLCOV_<GROUP>__<FIELD>`` for every field of ``Settings``."""
    names = set()
    for field, info in Settings.model_fields.items():
        group = info.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            names |= {f"CALLCOV_{field}__{sub}".upper() for sub in group.model_fields}
        else:
            names.add(f"CALLCOV_{field}".upper())
    return frozenset(names)


def parse_secrets(output: str) -> dict[str, str]:
    """A secret store's output: a JSON object, or ``NAME=value`` lines (``#`` comments, blank lines)."""
    text = output.strip()
    if text.startswith("{"):
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in json.loads(text).items()}
    pairs = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            raise DeployError(f"secret store output: a line without '=' (starting {name[:12]!r})")
        pairs[name.strip()] = value.strip().strip("'\"")
    return pairs


def run_secrets_command(command: str) -> dict[str, str]:
    result = subprocess.run(shlex.split(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DeployError(f"secrets command exited {result.returncode}: {result.stderr.strip()[:500]}")
    return parse_secrets(result.stdout)


def collect_env(environ: Mapping[str, str], secrets: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The allowed variables (secrets over environment) and the ``CALLCOV_*`` names left out."""
    allowed = setting_names() | EXTRA_NAMES
    merged = {**environ, **secrets}
    env = {name: value for name, value in merged.items() if name in allowed}
    ignored = sorted(n for n in merged if n.startswith("CALLCOV_") and n not in allowed)
    env.setdefault("CALLCOV_ENVIRONMENT", "production")
    return env, ignored


def check_env(env: Mapping[str, str]) -> Settings:
    """The settings the replicas will read; a ``DeployError`` listing every missing or bad one."""
    problems = [f"{name} is not set ({why})" for name, why in REQUIRED.items() if not env.get(name)]
    if env.get("CALLCOV_DB__URL", "").startswith("sqlite"):
        problems.append("CALLCOV_DB__URL is SQLite, a file on one node: use PostgreSQL")
    if env.get("CALLCOV_STORAGE__BACKEND", "s3") != "s3":
        problems.append("CALLCOV_STORAGE__BACKEND must be s3: local files are per node")
    settings = None
    try:
        with mock.patch.dict(os.environ, env, clear=True):
            settings = Settings()
    except ValidationError as error:
        problems += [f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors()]
    if settings is not None and settings.placeholder_secrets():
        # A cluster serves other hosts, whatever CALLCOV_ENVIRONMENT says.
        weak = ", ".join(settings.placeholder_secrets())
        problems.append(f"{weak}: a published or short value (random, 32+ characters on a cluster)")
    if problems or settings is None:
        raise DeployError("cannot deploy:\n  - " + "\n  - ".join(problems))
    return settings


def build_payload(config: dict[str, Any], env: Mapping[str, str], budget: int) -> dict[str, Any]:
    """The Serve config to PUT: pools sized for ``budget``, the dispatcher's slots per stage
    (``deployments.capacity``), ``env`` in every application's runtime_env."""
    from ray.serve.schema import ServeDeploySchema

    try:
        payload = apply_slots(apply_pools(config, budget))
    except (PoolBudgetError, CapacityError) as error:
        raise DeployError(str(error)) from error
    for app in payload.get("applications", []):
        runtime_env = dict(app.get("runtime_env") or {})
        runtime_env["env_vars"] = {**(runtime_env.get("env_vars") or {}), **env}
        app["runtime_env"] = runtime_env
    ServeDeploySchema.model_validate(payload)
    return payload


def redacted(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with the values of secret-looking variables hidden, for --dry-run."""
    shown = json.loads(json.dumps(payload))
    for app in shown.get("applications", []):
        env_vars = app.get("runtime_env", {}).get("env_vars", {})
        for name in env_vars:
            if any(hint in name for hint in SECRET_HINTS):
                env_vars[name] = "<redacted>"
    return shown


def submit(address: str, payload: dict[str, Any], token: str | None = None) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{address.rstrip('/')}/api/serve/applications/"
    try:
        response = httpx.put(url, json=payload, headers=headers, timeout=60)
    except httpx.HTTPError as error:
        raise DeployError(f"{url}: {error} (is `ray dashboard ray-cluster.yaml` running?)") from error
    if response.status_code != 200:
        raise DeployError(f"{url}: HTTP {response.status_code}: {response.text[:1000]}")


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--address", default=None, help=f"the dashboard (default {DEFAULT_ADDRESS})")
    parser.add_argument("--secrets-command", help="prints the secrets (JSON object or NAME=value lines)")
    parser.add_argument("--dry-run", action="store_true", help="print the payload, secrets redacted")
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        secrets = run_secrets_command(args.secrets_command) if args.secrets_command else {}
        env, ignored = collect_env(environ, secrets)
        for name in ignored:
            sys.stderr.write(f"deploy: {name} is not a CallCov setting; left out\n")
        settings = check_env(env)
        payload = build_payload(yaml.safe_load(args.config.read_text()), env, settings.db.connection_budget)
        if args.dry_run:
            sys.stdout.write(yaml.safe_dump(redacted(payload), sort_keys=False))
            return 0
        address = args.address or environ.get("RAY_DASHBOARD_ADDRESS") or DEFAULT_ADDRESS
        submit(address, payload, environ.get("RAY_AUTH_TOKEN"))
    except DeployError as error:
        sys.stderr.write(f"deploy: {error}\n")
        return 1
    names = len(payload["applications"][0]["runtime_env"]["env_vars"]) if payload["applications"] else 0
    sys.stdout.write(
        f"deploy: {len(payload['applications'])} applications submitted, {names} variables each\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
