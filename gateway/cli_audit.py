"""`gateway audit verify|head|show`: check the audit trail's chain, print its head, or the
records of one application."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from gateway.audit import verify
from gateway.config import load_config
from gateway.store.sql import store_for


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    async def work() -> int:
        store = store_for(config)
        await store.open()
        try:
            if args.action == "verify":
                result = await verify(store, config.audit_key, args.expect_head)
                print(json.dumps(result.to_json(), ensure_ascii=False))
                if not result.ok:
                    print(f"error: the audit trail is broken: {result.problem}", file=sys.stderr)
                return 0 if result.ok else 1
            if args.action == "head":
                head = await store.audit_records_tail()
                print(json.dumps({"head": f"{head['seq']}:{head['hash']}" if head else None}))
                return 0
            if not args.application_no:
                print("error: give the application number", file=sys.stderr)
                return 2
            records: list[dict[str, Any]] = await store.audit_for(args.application_no)
            print(json.dumps({"records": records}, ensure_ascii=False, indent=1, default=str))
            return 0
        finally:
            await store.close()

    return asyncio.run(work())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["verify", "head", "show"])
    p.add_argument("application_no", nargs="?", help="show: the application's records")
    p.add_argument("--expect-head", metavar="SEQ:HASH", help="verify: a head exported earlier must still be there")
    p.add_argument("--config", type=Path)
    p.set_defaults(fn=run)
