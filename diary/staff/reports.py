"""The staff report: a sortable participant list, downloadable as CSV, without the full export."""

from __future__ import annotations

import csv
import io

from flask import Response, render_template, request
from flask_login import current_user

from diary import audit, clock, db
from diary.auth import staff_required
from diary.services import reports
from diary.staff.accountability import records_config
from diary.staff.common import bp, study_config

COLUMNS = ("study_number", "site", "cohort", "status", "adherence_percent", "doses_taken", "doses_counted",
           "last_plt", "nadir_plt", "nadir_grade", "open_flags", "open_deviations", "open_saes")


@bp.get("/reports")
@staff_required()
def participant_report():
    s, now = db.session(), clock.now()
    key = request.args.get("sort", "study_number")
    descending = request.args.get("dir") == "desc"
    rows = reports.sort_rows(reports.participant_report(s, study_config(), records_config(), now,
                                                        current_user.site_ids), key, descending)
    if request.args.get("format") != "csv":
        return render_template("staff/records/report.html", rows=rows, sort=key, descending=descending,
                               keys=reports.SORT_KEYS)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([r.study_number, r.site, r.cohort, r.status, "" if r.adherence is None else r.adherence,
                         r.taken, r.counted, "" if r.last_plt is None else f"{r.last_plt:g}",
                         "" if r.nadir is None else f"{r.nadir:g}", "" if r.nadir_grade is None else r.nadir_grade,
                         r.open_flags, r.open_deviations, r.open_saes])
    audit.record(s, actor=f"staff:{current_user.id}", action="report_exported", entity="Export", at=now,
                 after={"report": "participants", "rows": len(rows)})
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="participants-{now:%Y%m%d}.csv"', "Cache-Control": "no-store"})
