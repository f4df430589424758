"""HTML from the Jinja2 templates in ``dmlviz/views/templates/``, autoescaped: text that comes
from run folders (names, settings, class names, errors) cannot inject markup. HTML made elsewhere
(figures, cards, tables) goes in as ``markupsafe.Markup``."""

from __future__ import annotations

from typing import Any

import jinja2
from markupsafe import Markup

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("dmlviz.views"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)


def render(template: str, **context: Any) -> str:
    """The template named ``template`` filled with ``context``."""
    return TEMPLATES.get_template(template).render(**context)


def macro(template: str, name: str) -> Any:
    """The macro ``name`` of ``template``: called with its arguments, it returns ``Markup``
    (a caller that hands it on as ``str`` converts it: ``str + Markup`` escapes the ``str``)."""
    return getattr(TEMPLATES.get_template(template).module, name)


__all__ = ["Markup", "TEMPLATES", "macro", "render"]
