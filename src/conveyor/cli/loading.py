"""Finding the user's code and app: import the named modules, pick the app, read settings.

Modules come from the command line (configuration), never from a message: importing
them is what registers their tasks, and a worker runs nothing else.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterable

import pydantic

import conveyor
from conveyor.app import Conveyor
from conveyor.cli.output import USAGE, CliError
from conveyor.exceptions import ConveyorError
from conveyor.settings import Settings

_DOTTED = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def _cwd_on_path() -> None:
    # `python -m conveyor` puts the working directory on sys.path; the console script doesn't
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def import_module(name: str) -> None:
    """Import one user module, turning every failure into a one-line :class:`CliError`."""
    if not _DOTTED.match(name):
        hint = ""
        if name.endswith(".py"):
            hint = f" (did you mean {name[:-3].replace('/', '.').strip('.')!r}?)"
        raise CliError(f"{name!r} is not a module name like 'myapp.tasks'{hint}", USAGE)
    _cwd_on_path()
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            raise CliError(
                f"cannot import {name!r}: no module named {missing!r} "
                "(run from the directory that contains it, or set PYTHONPATH)",
                USAGE,
            ) from exc
        raise CliError(f"cannot import {name!r}: {exc}", USAGE) from exc
    except ConveyorError:
        raise
    except Exception as exc:
        raise CliError(f"importing {name!r} failed: {type(exc).__name__}: {exc}", USAGE) from exc


def import_modules(names: Iterable[str]) -> None:
    for name in names:
        import_module(name)


def load_app(spec: str) -> Conveyor:
    """The app named by ``module:attribute`` (importing the module registers its tasks)."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise CliError(f"--app {spec!r}: expected module:attribute, e.g. myapp.tasks:app", USAGE)
    import_module(module)
    value: object = sys.modules[module]
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise CliError(f"--app {spec!r}: {module} has no attribute {attr!r}", USAGE) from None
    if not isinstance(value, Conveyor):
        raise CliError(
            f"--app {spec!r} is a {type(value).__name__}, not a conveyor.Conveyor app", USAGE
        )
    return value


def load_settings() -> Settings:
    """Settings from the environment and ``.env``; a bad value is a one-line usage error."""
    try:
        return Settings()
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise CliError(f"invalid setting CONVEYOR_{field.upper()}: {first['msg']}", USAGE) from exc


def open_app(
    url: str | None = None,
    app: str | None = None,
    modules: Iterable[str] = (),
    *,
    url_from_command_line: bool = False,
    settings: Settings | None = None,
) -> Conveyor:
    """Import ``modules`` and return the app to use.

    With ``--app`` that app (its own settings and URL); otherwise the default app,
    ``conveyor.init(url)``, with settings from the environment.
    """
    import_modules(modules)
    if app is not None:
        if url is not None and url_from_command_line:
            raise CliError("give --url or --app, not both: the app has its own URL", USAGE)
        return load_app(app)
    instance = conveyor.init(url, settings=settings or load_settings())
    instance.driver  # noqa: B018  # a bad URL or unknown scheme fails here, before any work
    return instance
