"""The demo's routes as a Litestar application, for tests/litestar_side_by_side.rs.

The same accounts and the same session keys as session-demo (`user_id`,
`username`, `roles`), on SQLSpec's PostgreSQL session store (asyncpg) and
Litestar's ServerSideSessionConfig set as the Rust demo's
`--litestar-compatible` config: cookie `session`, 32-byte ids, max_age one
day, renew_on_access, Path=/, HttpOnly, SameSite=Lax.

    DATABASE_URL=postgresql://root@127.0.0.1:5432/test SESSION_TABLE=litestar_session \
        python app.py

binds 127.0.0.1 on a free port (or PORT) and prints
`litestar-app: serving on http://127.0.0.1:PORT/` once it accepts requests.
SESSION_RENEW_ON_ACCESS=0 turns renew_on_access off (Litestar's default).
`GET /expiry` says what SQLSpec's store holds for the cookie's session
without going through the session middleware (which would renew it).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from typing import Any

import uvicorn
from litestar import Litestar, Request, get, post
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.response import Response
from sqlspec.adapters.asyncpg import AsyncpgConfig
from sqlspec.adapters.asyncpg.litestar import AsyncpgStore

DATABASE_URL = os.environ["DATABASE_URL"]
SESSION_TABLE = os.environ.get("SESSION_TABLE", "litestar_session")

# session-demo's DEMO_USERS.
USERS: dict[str, dict[str, Any]] = {
    "alice": {"id": 1, "password": "wonderland", "roles": ["user", "admin"]},
    "bob": {"id": 2, "password": "builder", "roles": ["user"]},
}

db = AsyncpgConfig(
    connection_config={"dsn": DATABASE_URL, "min_size": 1, "max_size": 4},
    extension_config={"litestar": {"session_table": SESSION_TABLE}},
)
store = AsyncpgStore(db)

# The Rust demo's `session_demo::litestar_session_config()`, field by field.
RENEW_ON_ACCESS = os.environ.get("SESSION_RENEW_ON_ACCESS", "1") != "0"

session_config = ServerSideSessionConfig(
    key="session",
    max_age=24 * 3600,
    session_id_bytes=32,
    renew_on_access=RENEW_ON_ACCESS,
    path="/",
    httponly=True,
    secure=False,
    samesite="lax",
)


def error(status: int, message: str) -> Response[dict[str, str]]:
    return Response({"error": message}, status_code=status)


@post("/login", status_code=200)
async def login(request: Request, data: dict[str, str]) -> Response[dict[str, str]]:
    user = USERS.get(data.get("username", ""))
    if user is None or user["password"] != data.get("password"):
        return error(401, "Invalid username or password")
    # Litestar keeps the session id of the cookie across a login (it has no
    # call to change it); session-demo issues a new one.
    request.set_session({"user_id": user["id"], "username": data["username"], "roles": user["roles"]})
    return Response({"status": "logged in"})


@get("/profile")
async def profile(request: Request) -> Response[dict[str, Any]]:
    user_id = request.session.get("user_id")
    if user_id is None:
        return error(401, "Not authenticated")
    return Response(
        {"user_id": user_id, "username": request.session.get("username"), "roles": request.session.get("roles")}
    )


@post("/logout", status_code=200)
async def logout(request: Request) -> dict[str, str]:
    request.clear_session()
    return {"status": "logged out"}


@get("/expiry", opt={"skip_session": True})
async def expiry(request: Request) -> dict[str, Any]:
    """What SQLSpec's store says of the cookie's session, outside the session
    middleware (which would renew it): `expires_in` in whole seconds, and
    whether it exists."""
    session_id = request.cookies.get("session", "")
    return {"exists": await store.exists(session_id), "expires_in": await store.expires_in(session_id)}


@get("/health", opt={"skip_session": True})
async def health() -> str:
    return "ok"


async def create_table() -> None:
    await store.create_table()


async def close_pool() -> None:
    await db.close_pool()


app = Litestar(
    route_handlers=[login, profile, logout, expiry, health],
    middleware=[session_config.middleware],
    stores={"sessions": store},
    on_startup=[create_table],
    on_shutdown=[close_pool],
)


async def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(os.environ.get("PORT", "0"))))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            await serving  # raises what stopped it
            sys.exit("litestar-app: the server stopped before it started")
        await asyncio.sleep(0.05)
    print(f"litestar-app: serving on http://127.0.0.1:{port}/", flush=True)
    await serving


if __name__ == "__main__":
    asyncio.run(main())
