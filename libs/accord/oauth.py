"""OAuth 2.0 client credentials for httpx: the one way accord's connectors sign in to a SaaS API.

    auth = ClientCredentials(client_id, secret, token_path="/oauth2/token", refused=lambda r: MyRejected(...))
    httpx.AsyncClient(base_url=..., auth=auth)

The token is fetched on first use and fetched again, once, when a call answers 401 (expired or revoked
session); a refused grant raises what `refused` builds from the token endpoint's response.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import httpx


class ClientCredentials(httpx.Auth):
    requires_response_body = True

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        token_path: str,
        refused: Callable[[httpx.Response], Exception],
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_path = token_path
        self.refused = refused
        self.token: str | None = None
        self.fetched = 0  # tokens fetched, for tests and metrics

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if request.url.path == self.token_path:  # a call to the token endpoint itself needs no token
            yield request
            return
        for attempt in range(2):
            if self.token is None or attempt:
                grant = {
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                }
                token_url = request.url.copy_with(path=self.token_path, query=None)
                answer = yield httpx.Request("POST", token_url, data=grant)
                if answer.status_code != 200:
                    raise self.refused(answer)
                self.token = str(answer.json()["access_token"])
                self.fetched += 1
            request.headers["Authorization"] = f"Bearer {self.token}"
            response = yield request
            if response.status_code != 401:
                return
