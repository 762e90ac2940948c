"""The studio app: a Panel template (sidebar + main), a registry of views, the job poller.

Views are registered by name with a factory ``factory(state) -> viewable``. Built-in views
live in ``studio/views/<name>.py`` and expose ``create_view(state)`` and ``TITLE``; a module
that is not there (yet) is skipped. Other code can add views with :func:`register_view`.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from studio.build import map_is_built
from studio.jobs import JobRunner, get_runner
from studio.state import StudioState

log = logging.getLogger(__name__)

ViewFactory = Callable[[StudioState], object]
POLL_MS = 400
#: built-in views in tab order; each is studio.views.<name> with create_view(state) and TITLE
BUILTIN_VIEWS = ("stages", "map", "labels", "publish", "jobs")


@dataclass(frozen=True)
class ViewEntry:
    name: str
    title: str
    factory: ViewFactory
    order: int


VIEWS: dict[str, ViewEntry] = {}


def register_view(name: str, factory: ViewFactory, title: Optional[str] = None, order: Optional[int] = None) -> None:
    """Add (or replace) a view of the main area."""
    if order is None:
        order = BUILTIN_VIEWS.index(name) if name in BUILTIN_VIEWS else 100 + len(VIEWS)
    VIEWS[name] = ViewEntry(name, title or name.title(), factory, order)


def load_builtin_views() -> dict[str, ViewEntry]:
    for name in BUILTIN_VIEWS:
        if name in VIEWS:
            continue
        try:
            module = importlib.import_module(f"studio.views.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"studio.views.{name}":
                continue  # not written yet
            raise
        factory = getattr(module, "create_view", None)
        if factory is not None:
            register_view(name, factory, getattr(module, "TITLE", name.title()))
    return dict(sorted(VIEWS.items(), key=lambda item: item[1].order))


CSS = """
.ts-card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 10px; background: #fafafa; }
.ts-card-meta { color: #555; font-size: 12px; margin-bottom: 4px; }
.ts-card-text { white-space: pre-wrap; word-break: break-word; font-size: 14px; }
.ts-card-stats, .ts-card-cluster { color: #555; font-size: 12px; margin-top: 4px; }
"""


def _view_error(name: str, exc: Exception):
    import panel as pn

    return pn.pane.Alert(f"The {name} view failed to start: {type(exc).__name__}: {exc}", alert_type="danger")


def create_app(data_dir: Path, runner: Optional[JobRunner] = None):
    """One browser session's page."""
    import panel as pn

    from studio.views.sidebar import create_sidebar

    pn.extension("tabulator", "filedropper", raw_css=[CSS], notifications=False)
    state = StudioState(data_dir, runner=runner or get_runner(Path(data_dir)))
    dataset = state.current_dataset()
    if dataset is not None and map_is_built(dataset):
        state.active_view = "map"  # nothing to run: the curator came for the map (a ?view= still wins)
    views = load_builtin_views()
    tabs = pn.Tabs(dynamic=True, sizing_mode="stretch_width", css_classes=["ts-views"])
    names = []
    for name, entry in views.items():
        try:
            view = entry.factory(state)
        except Exception as exc:  # noqa: BLE001 - one broken view must not take the studio down
            log.exception("view %s failed", name)
            view = _view_error(name, exc)
        tabs.append((entry.title, view))
        names.append(name)

    def on_tab(event):
        state.active_view = names[event.new]

    def on_view(event):
        if event.new in names and tabs.active != names.index(event.new):
            tabs.active = names.index(event.new)

    tabs.param.watch(on_tab, "active")
    state.param.watch(on_view, "active_view")
    if state.active_view in names:
        tabs.active = names.index(state.active_view)
    if pn.state.location is not None:
        pn.state.location.sync(state, {"active_view": "view"})
    # Bootstrap, not Fast: the Fast design links a Google font, and the studio must work offline.
    template = pn.template.BootstrapTemplate(
        title="Tweetscope Studio", sidebar=[create_sidebar(state)], main=[tabs],
        sidebar_width=300, header_background="#1d6fa5",
    )
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        pn.state.add_periodic_callback(state.poll_jobs, period=POLL_MS)
    template.studio_state = state  # for tests and other views
    return template
