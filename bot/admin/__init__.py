"""The officers' web console at /admin: server-rendered pages, Vietnamese first.

Flask-Login keeps who is signed in, Flask-WTF puts a CSRF token in every form, and flask-babel
renders the templates' words from the same catalogs the conversations use.
"""

from __future__ import annotations

import gettext
from functools import cached_property

from flask import Flask, request
from flask_babel import Babel, Domain, get_locale

from bot.admin import (  # noqa: F401  (each module adds its views to the blueprint)
    auth,
    campaigns,
    dashboard,
    export,
    pages,
    people,
    plan,
)
from bot.admin.common import bp
from messages_vi import LOCALES, normalise_locale, translations


class _Catalog:
    """The u-prefixed names flask-babel calls, over a standard library catalog."""

    def __init__(self, catalog: gettext.NullTranslations) -> None:
        self.catalog = catalog

    def ugettext(self, message: str) -> str:
        return self.catalog.gettext(message)

    def ungettext(self, singular: str, plural: str, n: int) -> str:
        return self.catalog.ngettext(singular, plural, n)

    def upgettext(self, context: str, message: str) -> str:
        return self.catalog.pgettext(context, message)

    def unpgettext(self, context: str, singular: str, plural: str, n: int) -> str:
        return self.catalog.npgettext(context, singular, plural, n)


class CatalogDomain(Domain):
    """flask-babel reading the catalogs compiled in memory by messages_vi."""

    def get_translations(self) -> _Catalog:
        return _Catalog(translations(normalise_locale(str(get_locale() or "vi"))))


class CatalogBabel(Babel):
    @cached_property
    def domain_instance(self) -> Domain:
        return CatalogDomain()


def _locale() -> str:
    asked = request.args.get("lang")
    return asked if asked in LOCALES else "vi"


def init_app(app: Flask) -> None:
    """Register the console on an app that already has its configuration and database."""
    CatalogBabel(app, locale_selector=_locale)
    auth.login_manager.init_app(app)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 8 * 3600)
    app.register_blueprint(bp)
