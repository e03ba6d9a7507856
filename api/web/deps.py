"""Dependencies of web pages: the signed-in actor (or a redirect to the sign-in page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from genpon.api.web.session import actor_of
from genpon.records.access import Actor


class LoginRequired(Exception):
    """Raised by :func:`web_actor` when nobody is signed in; answered with a redirect."""


def web_actor(request: Request) -> Actor:
    actor = actor_of(request)
    if actor is None:
        raise LoginRequired()
    return actor


WebActor = Annotated[Actor, Depends(web_actor)]
