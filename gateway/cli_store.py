"""`gateway store migrate|status|reseal`: the store's schema and sealed columns."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from gateway.config import load_config
from gateway.store.connectors import SCHEMA_VERSION
from gateway.store.sql import store_for


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    async def work() -> int:
        store = store_for(config)
        # status only looks; migrate and reseal apply what this version needs first.
        await store.open(migrate=args.action != "status")
        try:
            if args.action == "reseal":
                counts = await store.reseal()
                print(json.dumps({"resealed": counts, "key_id": config.sealer.active}))
            else:
                version = await store.schema_version()
                print(json.dumps({"schema_version": version, "gateway_needs": SCHEMA_VERSION,
                                  "up_to_date": version == SCHEMA_VERSION, "sealing": config.sealer.active or "off"}))
            return 0
        finally:
            await store.close()

    return asyncio.run(work())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["migrate", "status", "reseal"],
                   help="migrate: apply migrations now; reseal: rewrite sealed columns under the active key")
    p.add_argument("--config", type=Path)
    p.set_defaults(fn=run)
