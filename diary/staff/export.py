"""The pseudonymous data export: investigators (their sites) and admins (every site) only."""

from __future__ import annotations

from flask import Response, render_template
from flask_login import current_user

from diary import clock, db
from diary.auth import staff_required
from diary.services.export import TABLES, build_export
from diary.staff.common import bp, my_sites, study_config


@bp.get("/export")
@staff_required("investigator", "admin")
def export_page():
    return render_template("staff/export.html", tables=TABLES, sites=my_sites())


@bp.post("/export")
@staff_required("investigator", "admin")
def export_download():
    now = clock.now()
    s = db.session()
    # The export event is committed with the response, before a byte leaves (the unit of work,
    # diary/db.py): an export that is not in the trail never happened.
    data = build_export(s, sites=current_user.site_ids, actor_id=current_user.id, now=now, cfg=study_config())
    name = f"nct07243418-export-{now.strftime('%Y%m%dT%H%M%SZ')}.zip"
    return Response(data, mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@bp.post("/export/odm")
@staff_required("investigator", "admin")
def export_odm():
    """The study as one CDISC ODM 1.3.2 file. Spooled to a temporary file (the document is streamed,
    never held in memory): the export event is committed with the response, before a byte leaves."""
    import tempfile

    from flask import send_file

    from diary.services.odm import write_odm
    from diary.staff.common import study_config

    now = clock.now()
    s = db.session()
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - send_file closes it
    write_odm(s, study_config(), spool, sites=current_user.site_ids, actor=f"staff:{current_user.id}", now=now)
    spool.seek(0)
    name = f"nct07243418-odm-{now.strftime('%Y%m%dT%H%M%SZ')}.xml"
    response = send_file(spool, mimetype="application/xml", as_attachment=True, download_name=name)
    response.headers["Cache-Control"] = "no-store"
    return response
