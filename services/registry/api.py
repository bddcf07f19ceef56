"""The HTTP surface: Confluent Schema Registry REST API v1, with Confluent's content type and error bodies.

`build_app` serves a `Registry`; `FrontDoor` wraps it as raw ASGI for what must be fast or must come first:
basic auth, and `GET /schemas/ids/{id}` answered from pre-serialised bytes without routing. Writes run on
the leader; any other instance forwards them there (or refuses with 50003 when no leader answers).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Lifespan, Message, Receive, Scope, Send

from . import errors
from .errors import RegistryError
from .registry import Registry, parse_version

log = logging.getLogger("accord_registry.api")

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
FORWARDED = "x-accord-registry-forwarded"

Handler = Callable[[Request], Awaitable[Response]]


class Leadership(Protocol):
    async def leader(self) -> str | None:
        """'self' if this instance takes writes, else the leader's URL, or None if there is none."""
        ...

    def begin_write(self) -> bool:
        """Mark a local write as under way; False if this instance no longer leads (forward instead)."""
        ...

    def end_write(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        """For GET /_leader: {"leader": bool, "leader_url": str | None, "joined": bool}, now, without waiting."""
        ...


class Solo:
    """Leadership for a single in-process registry (unit tests): always the leader."""

    async def leader(self) -> str | None:
        return "self"

    def begin_write(self) -> bool:
        return True

    def end_write(self) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"leader": True, "leader_url": None, "joined": True}


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def reply(data: Any, status: int = 200) -> Response:
    return Response(dumps(data), status_code=status, media_type=CONTENT_TYPE)


def error_reply(exc: RegistryError) -> Response:
    return reply(exc.body(), exc.status)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


async def _body(request: Request) -> Any:
    # Confluent's clients send application/vnd.schemaregistry.v1+json or application/json; curl sends a
    # form type by default. Whatever the header says, the body must be JSON, and that is what is checked.
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise RegistryError(400, 400, f"The request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RegistryError(400, 400, "The request body nests too deeply") from None


def endpoint(fn: Handler) -> Handler:
    """Every route answers in Confluent's shape: a RegistryError as its body, anything else as 50001."""

    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except RegistryError as exc:
            return error_reply(exc)
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.url.path)
            return error_reply(RegistryError(500, 50001, f"Internal error: {type(exc).__name__}: {exc}"))

    wrapped.__name__ = fn.__name__
    return wrapped


def build_app(
    registry: Registry,
    leadership: Leadership,
    *,
    lifespan: Lifespan[Any] | None = None,
    forward_timeout: float = 30.0,
) -> Starlette:
    state = registry.state
    client: httpx.AsyncClient | None = None

    async def write(request: Request, local: Callable[[], Awaitable[Response]]) -> Response:
        nonlocal client
        leader = await leadership.leader()
        if leader == "self":
            if leadership.begin_write():
                try:
                    return await local()
                finally:
                    leadership.end_write()
            leader = await leadership.leader()  # leadership moved on just now: forward to the new leader
        if leader is None or leader == "self" or request.headers.get(FORWARDED):
            raise RegistryError(
                503,
                50003,
                "Error while forwarding the request to the leader: no registry instance is the leader right now "
                "(an election is in progress); retry in a few seconds",
            )
        if client is None:
            client = httpx.AsyncClient(timeout=forward_timeout)
        headers = {FORWARDED: "1", "content-type": request.headers.get("content-type", CONTENT_TYPE)}
        if "authorization" in request.headers:
            headers["authorization"] = request.headers["authorization"]
        url = leader.rstrip("/") + request.url.path
        try:
            answer = await client.request(
                request.method, url, params=request.query_params, content=await request.body(), headers=headers
            )
        except httpx.HTTPError as exc:
            raise RegistryError(
                503, 50003, f"Error while forwarding the request to the leader at {leader}: {type(exc).__name__}"
            ) from None
        if answer.is_success:
            # read-your-writes through this instance too: answer once our own state has the record
            await registry.log.sync()
        return Response(answer.content, status_code=answer.status_code, media_type=CONTENT_TYPE)

    # -- root, types, contexts ----------------------------------------------------------------

    @endpoint
    async def root(request: Request) -> Response:
        return reply({})

    @endpoint
    async def leader_info(request: Request) -> Response:
        # accord's own, not Confluent's: which instance takes writes (Karapace has /master_available)
        return reply(leadership.describe())

    @endpoint
    async def schema_types(request: Request) -> Response:
        return reply(["AVRO"])

    @endpoint
    async def contexts(request: Request) -> Response:
        return reply(["."])

    # -- subjects -----------------------------------------------------------------------------

    @endpoint
    async def list_subjects(request: Request) -> Response:
        deleted = _flag(request, "deleted")
        deleted_only = _flag(request, "deletedOnly")
        prefix = request.query_params.get("subjectPrefix", "")
        out = []
        for subject in sorted(state.subjects):
            if not subject.startswith(prefix):
                continue
            versions = state.versions(subject, include_deleted=True)
            live = any(not sv.deleted for sv in versions)
            if (deleted_only and not live and versions) or (not deleted_only and (live or (deleted and versions))):
                out.append(subject)
        return reply(out)

    @endpoint
    async def list_versions(request: Request) -> Response:
        subject = request.path_params["subject"]
        deleted = _flag(request, "deleted") or _flag(request, "deletedOnly")
        versions = state.versions(subject, include_deleted=deleted)
        if _flag(request, "deletedOnly"):
            versions = [sv for sv in versions if sv.deleted]
        if not versions:
            raise errors.subject_not_found(subject)
        return reply([sv.version for sv in versions])

    @endpoint
    async def register(request: Request) -> Response:
        subject = request.path_params["subject"]
        body = await _body(request)

        async def local() -> Response:
            schema_id = await registry.register(subject, body, normalize=_flag(request, "normalize"))
            return reply({"id": schema_id})

        return await write(request, local)

    @endpoint
    async def lookup(request: Request) -> Response:
        subject = request.path_params["subject"]
        body = await _body(request)
        found = registry.lookup(subject, body, normalize=_flag(request, "normalize"), deleted=_flag(request, "deleted"))
        return reply(found)

    @endpoint
    async def delete_subject(request: Request) -> Response:
        subject = request.path_params["subject"]

        async def local() -> Response:
            return reply(await registry.delete_subject(subject, permanent=_flag(request, "permanent")))

        return await write(request, local)

    @endpoint
    async def get_version(request: Request) -> Response:
        sv = registry.get_version(
            request.path_params["subject"], request.path_params["version"], deleted=_flag(request, "deleted")
        )
        return reply(registry.version_json(sv))

    @endpoint
    async def get_version_schema(request: Request) -> Response:
        sv = registry.get_version(
            request.path_params["subject"], request.path_params["version"], deleted=_flag(request, "deleted")
        )
        return Response(state.schemas[sv.schema_id].text.encode(), media_type=CONTENT_TYPE)

    @endpoint
    async def referenced_by(request: Request) -> Response:
        sv = registry.get_version(request.path_params["subject"], request.path_params["version"], deleted=True)
        return reply(state.referenced_by(sv.subject, sv.version))

    @endpoint
    async def delete_version(request: Request) -> Response:
        subject, version = request.path_params["subject"], request.path_params["version"]
        parse_version(version)  # a bad version is refused here, on any instance

        async def local() -> Response:
            return reply(await registry.delete_version(subject, version, permanent=_flag(request, "permanent")))

        return await write(request, local)

    # -- schemas by id ------------------------------------------------------------------------

    def _schema_id(request: Request) -> int:
        raw = request.path_params["id"]
        if not raw.isdigit():
            raise errors.schema_not_found(f"Schema {raw} not found: a schema id is a positive integer")
        schema_id = int(raw)
        if schema_id not in state.schemas:
            raise errors.schema_not_found(f"Schema {schema_id} not found")
        return schema_id

    @endpoint
    async def schema_by_id(request: Request) -> Response:
        return Response(state.schemas[_schema_id(request)].body, media_type=CONTENT_TYPE)

    @endpoint
    async def schema_text_by_id(request: Request) -> Response:
        return Response(state.schemas[_schema_id(request)].text.encode(), media_type=CONTENT_TYPE)

    def _uses(schema_id: int, deleted: bool) -> list[tuple[str, int]]:
        return sorted(
            (sv.subject, sv.version)
            for versions in state.subjects.values()
            for sv in versions.values()
            if sv.schema_id == schema_id and (deleted or not sv.deleted)
        )

    @endpoint
    async def subjects_by_id(request: Request) -> Response:
        schema_id = _schema_id(request)
        return reply(sorted({s for s, _ in _uses(schema_id, _flag(request, "deleted"))}))

    @endpoint
    async def versions_by_id(request: Request) -> Response:
        schema_id = _schema_id(request)
        return reply([{"subject": s, "version": v} for s, v in _uses(schema_id, _flag(request, "deleted"))])

    @endpoint
    async def list_schemas(request: Request) -> Response:
        prefix = request.query_params.get("subjectPrefix", "")
        deleted = _flag(request, "deleted")
        latest_only = _flag(request, "latestOnly")
        out = []
        for subject in sorted(state.subjects):
            if not subject.startswith(prefix):
                continue
            versions = state.versions(subject, include_deleted=deleted)
            for sv in versions[-1:] if latest_only else versions:
                out.append(registry.version_json(sv))
        return reply(out)

    # -- compatibility ------------------------------------------------------------------------

    @endpoint
    async def compatibility(request: Request) -> Response:
        body = await _body(request)
        result = registry.test_compatibility(
            request.path_params["subject"],
            request.path_params.get("version"),
            body,
            normalize=_flag(request, "normalize"),
        )
        out: dict[str, Any] = {"is_compatible": result.compatible}
        if _flag(request, "verbose"):
            out["messages"] = list(result.messages)
        return reply(out)

    # -- config -------------------------------------------------------------------------------

    @endpoint
    async def get_config(request: Request) -> Response:
        subject = request.path_params.get("subject")
        level = registry.get_config(subject, default_to_global=_flag(request, "defaultToGlobal"))
        return reply({"compatibilityLevel": level})

    @endpoint
    async def put_config(request: Request) -> Response:
        subject = request.path_params.get("subject")
        body = await _body(request)

        async def local() -> Response:
            return reply({"compatibility": await registry.set_config(subject, body)})

        return await write(request, local)

    @endpoint
    async def delete_config(request: Request) -> Response:
        subject = request.path_params.get("subject")

        async def local() -> Response:
            return reply({"compatibilityLevel": await registry.delete_config(subject)})

        return await write(request, local)

    # -- mode ---------------------------------------------------------------------------------

    @endpoint
    async def get_mode(request: Request) -> Response:
        subject = request.path_params.get("subject")
        return reply({"mode": registry.get_mode(subject, default_to_global=_flag(request, "defaultToGlobal"))})

    @endpoint
    async def put_mode(request: Request) -> Response:
        subject = request.path_params.get("subject")
        body = await _body(request)

        async def local() -> Response:
            return reply({"mode": await registry.set_mode(subject, body, force=_flag(request, "force"))})

        return await write(request, local)

    @endpoint
    async def delete_mode(request: Request) -> Response:
        subject = request.path_params["subject"]

        async def local() -> Response:
            return reply({"mode": await registry.delete_mode(subject)})

        return await write(request, local)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            return reply({"error_code": 405, "message": f"HTTP 405 Method Not Allowed: {request.method}"}, 405)
        return reply(
            {"error_code": exc.status_code, "message": f"HTTP {exc.status_code} {exc.detail}: {request.url.path}"},
            exc.status_code,
        )

    routes = [
        Route("/", root, methods=["GET"]),
        Route("/_leader", leader_info, methods=["GET"]),
        Route("/schemas/types", schema_types, methods=["GET"]),
        Route("/contexts", contexts, methods=["GET"]),
        Route("/subjects", list_subjects, methods=["GET"]),
        Route("/subjects/{subject}", lookup, methods=["POST"]),
        Route("/subjects/{subject}", delete_subject, methods=["DELETE"]),
        Route("/subjects/{subject}/versions", list_versions, methods=["GET"]),
        Route("/subjects/{subject}/versions", register, methods=["POST"]),
        Route("/subjects/{subject}/versions/{version}", get_version, methods=["GET"]),
        Route("/subjects/{subject}/versions/{version}", delete_version, methods=["DELETE"]),
        Route("/subjects/{subject}/versions/{version}/schema", get_version_schema, methods=["GET"]),
        Route("/subjects/{subject}/versions/{version}/referencedby", referenced_by, methods=["GET"]),
        Route("/schemas", list_schemas, methods=["GET"]),
        Route("/schemas/ids/{id}", schema_by_id, methods=["GET"]),
        Route("/schemas/ids/{id}/schema", schema_text_by_id, methods=["GET"]),
        Route("/schemas/ids/{id}/subjects", subjects_by_id, methods=["GET"]),
        Route("/schemas/ids/{id}/versions", versions_by_id, methods=["GET"]),
        Route("/compatibility/subjects/{subject}/versions", compatibility, methods=["POST"]),
        Route("/compatibility/subjects/{subject}/versions/{version}", compatibility, methods=["POST"]),
        Route("/config", get_config, methods=["GET"]),
        Route("/config", put_config, methods=["PUT"]),
        Route("/config", delete_config, methods=["DELETE"]),
        Route("/config/{subject}", get_config, methods=["GET"]),
        Route("/config/{subject}", put_config, methods=["PUT"]),
        Route("/config/{subject}", delete_config, methods=["DELETE"]),
        Route("/mode", get_mode, methods=["GET"]),
        Route("/mode", put_mode, methods=["PUT"]),
        Route("/mode/{subject}", get_mode, methods=["GET"]),
        Route("/mode/{subject}", put_mode, methods=["PUT"]),
        Route("/mode/{subject}", delete_mode, methods=["DELETE"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan)


class FrontDoor:
    """Raw ASGI in front of the app: basic auth first, then the hot `GET /schemas/ids/{id}` without routing."""

    _PREFIX = "/schemas/ids/"
    _HEADERS = [(b"content-type", CONTENT_TYPE.encode())]

    def __init__(self, app: ASGIApp, registry: Registry, *, username: str | None, password: str | None) -> None:
        self.app = app
        self.schemas = registry.state.schemas
        self._auth: bytes | None = None
        if username is not None and password is not None:
            self._auth = b"Basic " + base64.b64encode(f"{username}:{password}".encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._auth is not None and not self._authorized(scope):
            await self._send(
                send,
                401,
                dumps({"error_code": 401, "message": "Unauthorized: give HTTP basic credentials of a registry user"}),
                extra=[(b"www-authenticate", b'Basic realm="accord-registry"')],
            )
            return
        path: str = scope["path"]
        if scope["method"] == "GET" and path.startswith(self._PREFIX):
            tail = path[len(self._PREFIX) :]
            if tail.isdigit():
                stored = self.schemas.get(int(tail))
                if stored is not None:
                    await self._send(send, 200, stored.body)
                    return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        assert self._auth is not None
        for name, value in scope["headers"]:
            if name == b"authorization":
                try:
                    return hmac.compare_digest(value, self._auth)
                except (TypeError, binascii.Error):
                    return False
        return False

    async def _send(self, send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        headers = [*self._HEADERS, (b"content-length", str(len(body)).encode()), *(extra or [])]
        start: Message = {"type": "http.response.start", "status": status, "headers": headers}
        await send(start)
        await send({"type": "http.response.body", "body": body})
