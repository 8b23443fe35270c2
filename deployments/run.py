"""``callcov-serve``: migrate the database, then run the Serve config on a local Ray instance.

This is ``serve run configs/serve.local.yaml`` with the database migrated first and the embedded
data directory made absolute, so every Ray worker finds the same SQLite file.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from callcov.config import InsecureBind, get_settings
from callcov.db import run_migrations
from deployments.capacity import CapacityError, apply_slots

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "configs" / "serve.local.yaml"


def llm_route(config: dict[str, Any]) -> str:
    """The route prefix of the config's ``llm`` app (``/llm`` when it has none)."""
    apps = {app.get("name"): app for app in config.get("applications", [])}
    return str((apps.get("llm") or {}).get("route_prefix") or "/llm").rstrip("/")


def internal_llm_env(port: int, route: str) -> None:
    """The dispatcher reaches the ``llm`` app through this Serve endpoint with an internal key that
    the proxy checks (``deployments/proxy.py``); a fresh key per launch unless one is set."""
    os.environ.setdefault("CALLCOV_INFERENCE__LLM_BASE_URL", f"http://127.0.0.1:{port}{route}/v1")
    os.environ.setdefault("CALLCOV_INFERENCE__LLM_ROUTE_PREFIX", route)
    if not os.environ.get("CALLCOV_INFERENCE__LLM_API_KEY"):
        os.environ["CALLCOV_INFERENCE__LLM_API_KEY"] = secrets.token_urlsafe(32)


def prepare_config(
    path: Path, config: dict[str, Any], host: str | None, port: int | None
) -> tuple[Path, int]:
    """The config to run (a copy of ``config`` in a temporary file, with the dispatcher's slots per
    stage from ``deployments.capacity`` and the host or port overrides) and its HTTP port. ``path``
    names the source in errors."""
    try:
        config = apply_slots(config)
    except CapacityError as error:
        raise SystemExit(f"{path}: {error}") from error
    http = config.setdefault("http_options", {})
    if host is not None:
        http["host"] = host
    if port is not None:
        http["port"] = port
    handle, name = tempfile.mkstemp(prefix="callcov-serve-", suffix=".yaml")
    with os.fdopen(handle, "w") as out:
        yaml.safe_dump(config, out)
    return Path(name), int(http.get("port", 8000))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="callcov-serve", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--skip-migrations", action="store_true")
    args = parser.parse_args(argv)

    settings = get_settings()
    path = args.config.resolve()
    config = yaml.safe_load(path.read_text()) or {}
    host = args.host if args.host is not None else (config.get("http_options") or {}).get("host", "127.0.0.1")
    try:  # the published development secrets serve loopback only
        settings.check_bind(str(host))
    except InsecureBind as error:
        raise SystemExit(f"callcov-serve: {error}") from error
    os.environ["CALLCOV_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH", "deployments.proxy:proxy_middlewares")
    # Measured in bench/ingress.py: +10-25 % throughput for the async ingress (docs/benchmarks.md).
    os.environ.setdefault("RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD", "0")
    os.environ.setdefault("RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP", "0")
    if not args.skip_migrations:
        run_migrations(settings)
    to_run, port = prepare_config(path, config, args.host, args.port)
    internal_llm_env(port, llm_route(config))
    serve_cli = Path(sys.executable).parent / "serve"
    os.chdir(ROOT)
    os.execv(str(serve_cli), [str(serve_cli), "run", str(to_run)])


if __name__ == "__main__":
    main()
