"""ASGI entry point: ``uvicorn api.main:app``."""

from genpon.api.app import create_app

app = create_app()
