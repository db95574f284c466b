"""`python -m api.keys create|list|revoke`: the work behind `ccpulse keys` (Redis is the api's)."""

from __future__ import annotations

import argparse
import asyncio
import json

from redis.asyncio import Redis

from services.apikeys import Role
from services.settings import Settings, load_settings

from .auth import Authenticator


async def run(
    settings: Settings, action: str, name: str | None, role: str, key_id: str | None
) -> int:
    redis = Redis.from_url(settings.redis_url or "redis://127.0.0.1:6379/0")
    auth = Authenticator(redis, settings)
    try:
        if action == "create":
            new_id, key = await auth.create_key(
                name or "unnamed", Role[role], settings.clock().now()
            )
            print(json.dumps({"id": new_id, "name": name, "role": role, "key": key}))
        elif action == "list":
            for row in await auth.list_keys():
                print(json.dumps(row))
        elif action == "revoke" and key_id:
            if not await auth.revoke(key_id):
                print(f"no key {key_id}")
                return 1
        else:
            print("usage: create --name N --role R | list | revoke --id ID")
            return 2
    finally:
        await redis.aclose()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="ccpulse keys")
    parser.add_argument("action", choices=["create", "list", "revoke"])
    parser.add_argument("--name")
    parser.add_argument("--role", default="viewer", choices=[r.name for r in Role])
    parser.add_argument("--id", dest="key_id")
    args = parser.parse_args()
    raise SystemExit(
        asyncio.run(run(load_settings(), args.action, args.name, args.role, args.key_id))
    )


if __name__ == "__main__":
    main()
