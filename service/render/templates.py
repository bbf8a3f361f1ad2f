"""The Jinja environment of the served HTML pages (service/templates): HTML autoescaped, rendered server-side."""

from __future__ import annotations

from importlib import resources

from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Environment(
    loader=FileSystemLoader(str(resources.files("service").joinpath("templates"))),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
