"""Load an archive: upload (drag and drop) or a path on this machine, ingested in the background.

Uploaded bytes go to a hidden temp file in the data dir and are removed after the ingest,
whatever its outcome. Ingest errors (``IngestError``: zip slip, bombs, bad JS, ...) are
shown as they are; a failed ingest leaves no dataset folder (``Workspace.creating_dataset``).
"Load and build the map" queues the build (every missing or stale stage, one job) behind the
ingest and switches to the Map tab when it is done.
"""

from __future__ import annotations

import contextlib
import html
import re
import uuid
from pathlib import Path
from typing import Optional

import param

from pipeline.core.workspace import WorkspaceError, validate_dataset_name
from pipeline.stages.ingest import IngestConfig, IngestError, ingest_archive, skipped_records_lines
from studio.build import submit_build
from studio.jobs import CANCELLED, DONE, FAILED
from studio.views.update import create_update_panel

UPLOAD_DIR = ".uploads"


def dataset_name_from_filename(filename: str) -> str:
    """A valid dataset name suggested by an archive's file name ("twitter-2024 (1).zip" -> "twitter-2024-1")."""
    stem = Path(filename or "").name
    for suffix in (".zip", ".json", ".js"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:64]
    return name or "archive"


def ingest_job(source: Path, workspace, name: str, *, include_likes: bool = False,
               overwrite: bool = False, remove_source: bool = False, display_name: Optional[str] = None,
               skip_bad_records: bool = False):
    """The job function that ingests ``source`` into ``workspace`` as ``name``.

    ``display_name`` is what the curator called the file (an upload's temp name means nothing to them).
    """

    def run(progress):
        try:
            dataset = ingest_archive(source, workspace, name, include_likes=include_likes,
                                     overwrite=overwrite, progress=progress, skip_bad_records=skip_bad_records)
            return dataset.name
        except IngestError as exc:
            if display_name and Path(source).name in str(exc):
                raise IngestError(str(exc).replace(Path(source).name, display_name)) from exc
            raise
        finally:
            if remove_source:
                with contextlib.suppress(OSError):
                    Path(source).unlink()

    return run


class LoadModel(param.Parameterized):
    """Checks a load request and submits the ingest job (no widgets: testable server-side)."""

    dataset_name = param.String(default="", doc="Dataset name (default: from the file name)")
    path = param.String(default="", doc="Archive path (zip, folder or community JSON) on this machine")
    include_likes = param.Boolean(default=False, doc="Also ingest liked tweets")
    skip_bad_records = param.Boolean(default=False, doc=IngestConfig.param.skip_bad_records.doc)
    overwrite = param.Boolean(default=False, doc="Replace a dataset of the same name")
    build = param.Boolean(default=False, doc="After the ingest, run every stage and show the map")
    job_id = param.String(default=None, allow_None=True)
    build_job_id = param.String(default=None, allow_None=True)
    error = param.String(default="")
    info = param.String(default="")

    def __init__(self, state, **params):
        super().__init__(**params)
        self.state = state
        state.param.watch(lambda _event: self.follow_job(), "jobs_version")

    def _check_name(self, name: str) -> Optional[str]:
        try:
            validate_dataset_name(name)
        except WorkspaceError as exc:
            self.error = str(exc)
            return None
        if self.state.workspace.has_dataset(name) and not self.overwrite:
            self.error = (f"a dataset named '{name}' already exists; choose another name "
                          "or tick 'Replace existing'")
            return None
        if self.state.runner.active(dataset=name):
            self.error = f"dataset '{name}' is busy with another job; wait for it or cancel it"
            return None
        return name

    def submit_upload(self, filename: str, data: bytes):
        self.error = self.info = ""
        name = self._check_name(self.dataset_name.strip() or dataset_name_from_filename(filename))
        if name is None:
            return None
        if not data:
            self.error = f"{filename}: the uploaded file is empty"
            return None
        upload_dir = Path(self.state.data_dir) / UPLOAD_DIR
        upload_dir.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename).name)[-80:] or "archive.zip"
        target = upload_dir / f"{uuid.uuid4().hex[:12]}-{safe}"
        target.write_bytes(data)
        return self._submit(target, name, f"ingest upload {filename} as '{name}'", remove_source=True,
                            display_name=Path(filename).name)

    def submit_path(self):
        self.error = self.info = ""
        raw = self.path.strip()
        if not raw:
            self.error = "enter the path of an archive (.zip, extracted folder or community .json)"
            return None
        source = Path(raw).expanduser()
        if not source.exists():
            self.error = f"{source}: no such file or folder"
            return None
        name = self._check_name(self.dataset_name.strip() or dataset_name_from_filename(source.name))
        if name is None:
            return None
        return self._submit(source, name, f"ingest {source.name} as '{name}'")

    def _submit(self, source: Path, name: str, title: str, remove_source: bool = False,
                display_name: Optional[str] = None):
        fn = ingest_job(source, self.state.workspace, name, include_likes=self.include_likes,
                        overwrite=self.overwrite, remove_source=remove_source, display_name=display_name,
                        skip_bad_records=self.skip_bad_records)
        job = self.state.runner.submit(name, "ingest", fn, title=title)
        self.job_id = job.id
        self.info = f"Ingesting into '{name}'…"
        if self.build:
            self.build_job_id = submit_build(self.state.runner, self.state.workspace, name, after=job).id
        return job

    def follow_job(self) -> None:
        job = self.state.runner.get(self.job_id) if self.job_id else None
        if job is None:
            self.follow_build()
            return
        if job.status == FAILED:
            self.error = f"{job.error_type or 'Error'}: {job.error}" if job.error_type != "IngestError" \
                else job.error
            self.info = "Nothing was created."
            self.job_id = self.build_job_id = None
        elif job.status == CANCELLED:
            self.info, self.job_id, self.build_job_id = "Ingest cancelled; nothing was created.", None, None
        elif job.status == DONE:
            skipped = skipped_records_lines(self.state.workspace.dataset(job.result).meta(), limit=5)
            self.info, self.job_id = " ".join([f"Dataset '{job.result}' is ready.", *skipped]), None
            self.follow_build()
        else:
            pct = f" {job.fraction:.0%}" if job.fraction is not None else ""
            self.info = f"Ingesting…{pct} {job.message}"

    def follow_build(self) -> None:
        """Progress of the queued build; when it is done, the studio shows the map."""
        job = self.state.runner.get(self.build_job_id) if self.build_job_id else None
        if job is None:
            return
        if job.status == DONE:
            self.build_job_id = None
            self.info = f"The map of '{job.dataset}' is built."
            if self.state.dataset != job.dataset and job.dataset in self.state.param.dataset.objects:
                self.state.dataset = job.dataset
            self.state.active_view = "map"
        elif job.status in (FAILED, CANCELLED):
            self.build_job_id = None
            self.error = f"Building the map stopped: {job.error or job.status}"
        else:
            pct = f" {job.fraction:.0%}" if job.fraction is not None else ""
            self.info = f"Building the map…{pct} {job.message}"


def create_load_panel(state):
    """Widgets of the load box (used in the sidebar)."""
    import panel as pn

    model = LoadModel(state)
    dropper = pn.widgets.FileDropper(multiple=False, max_file_size="4000MB", chunk_size=4_000_000,
                                     accepted_filetypes=[".zip", ".json"], sizing_mode="stretch_width",
                                     css_classes=["ts-upload"], name="Drop an X archive (.zip) here")
    name = pn.widgets.TextInput(name="Dataset name", placeholder="from the file name",
                                css_classes=["ts-load-name"], sizing_mode="stretch_width")
    path = pn.widgets.TextInput(name="…or an archive path on this machine", placeholder="/path/to/twitter.zip",
                                css_classes=["ts-load-path"], sizing_mode="stretch_width")
    likes = pn.widgets.Checkbox(name="Include likes")
    skip_bad = pn.widgets.Checkbox(name=IngestConfig.param.skip_bad_records.label, css_classes=["ts-load-skip-bad"])
    overwrite = pn.widgets.Checkbox(name="Replace existing")
    load_path = pn.widgets.Button(name="Load path", button_type="default", css_classes=["ts-load-path-btn"])
    build_path = pn.widgets.Button(name="Load and build the map", button_type="primary",
                                   css_classes=["ts-load-build-btn"])
    build_upload = pn.widgets.Checkbox(name="Build the map after an upload", value=True,
                                       css_classes=["ts-load-build-upload"])
    error = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["ts-load-error"],
                          # the text is escaped HTML, not Markdown (archive names may contain '*' or '_')
                          sizing_mode="stretch_width")
    info = pn.pane.HTML("", css_classes=["ts-load-info"], sizing_mode="stretch_width")

    def sync(*_):
        model.param.update(dataset_name=name.value, path=path.value, include_likes=likes.value,
                           overwrite=overwrite.value, skip_bad_records=skip_bad.value, build=build_upload.value)

    def on_drop(event):
        if not event.new:
            return
        sync()
        filename, data = next(iter(event.new.items()))
        if isinstance(data, str):  # text files arrive decoded
            data = data.encode("utf-8")
        model.submit_upload(filename, data)
        dropper.value = {}

    dropper.param.watch(on_drop, "value")
    load_path.on_click(lambda _: (sync(), setattr(model, "build", False), model.submit_path()))
    build_path.on_click(lambda _: (sync(), setattr(model, "build", True), model.submit_path()))

    def show(*_):
        # Own elements inside the panes' shadow DOM: what tests (and screen readers) can find.
        error.object = f'<div class="ts-load-error-text">{html.escape(model.error)}</div>' if model.error else ""
        error.visible = bool(model.error)
        info.object = f'<span class="ts-load-info-text">{html.escape(model.info)}</span>' if model.info else ""

    model.param.watch(show, ["error", "info"])
    return pn.Column(pn.pane.Markdown("### Load an archive"), dropper, name, path,
                     pn.Row(likes, overwrite), skip_bad, build_upload, pn.Row(build_path, load_path), error, info,
                     create_update_panel(state)[0],  # merge a newer archive into the dataset in view
                     sizing_mode="stretch_width", css_classes=["ts-load"]), model
