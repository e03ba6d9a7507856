"""The JSON contract of the API: one Pydantic model per response shape (``XPublic``), the one
error schema, and the response declarations routes attach so ``/openapi.json`` tells the truth.

The routes still build plain dicts with :mod:`genpon.api.schemas` (the CLI prints the same
dicts); FastAPI validates each dict against the route's ``response_model`` and serializes it.
Field order here is the key order of those dicts, so the JSON bytes are unchanged.
"""
