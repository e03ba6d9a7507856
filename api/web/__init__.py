"""Server-rendered Japanese web interface (Jinja2 templates, plain CSS, small vanilla JS)."""
