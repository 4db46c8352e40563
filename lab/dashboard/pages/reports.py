"""Reports: every ``lab eval`` report and every explanation report under the runs folder,
as tables and plots, with the gradient-masking checks and the gray-box / white-box /
adaptive rows in plain view.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from lab.dashboard import settings
from lab.dashboard.ui import user_errors
from lab.present import reports
from lab.present.explanations import attack_heading, explain_table, quality_table
from lab.present.markdown import report_markdown
from lab.present.plots import accuracy_curves
from lab.present.text import checks_summary, eps_label, model_title

KEY = "rep"


def _robustness(entry: reports.ReportEntry) -> None:
    rep = reports.load_robustness(entry.path)
    st.subheader(f"{model_title(rep)}: {entry.title}")
    h = reports.headline(rep)
    text = h.text
    if h.failed_checks:
        st.error(text)
    elif h.upper_bound:
        st.warning(text)
    else:
        st.success(text)
    m = rep.model or {}
    st.markdown("\n".join(f"- **{k}**: {v}" for k, v in reports.report_facts(rep)))
    left, _ = st.columns([3, 1])
    left.pyplot(accuracy_curves([(m.get("arch", "model"), reports.curves(rep))], norm=rep.norm,
                                eps_labels={float(r.eps): eps_label(rep, r.eps) for r in rep.results},
                                title=f"{model_title(rep)}, n={rep.n}"))  # fmt: skip
    st.markdown("**Accuracy per epsilon** (after each attack: cumulative, worst case over the attacks so far)")
    st.dataframe(reports.summary_table(rep), hide_index=True)
    rows = reports.threat_row_table(rep)
    st.markdown("**Threat rows** (gray-box: attack the classifier, then defend; white-box: attack through the "
                "whole pipeline; adaptive: BPDA / EOT)")  # fmt: skip
    described = [t for t in getattr(rep, "threat_rows", None) or [] if isinstance(t, dict)]
    if len(described) > 1:
        st.markdown("\n".join(f"- **{t.get('name')}**: {t.get('description', '')}" for t in described))
    if rows:
        st.dataframe(rows, hide_index=True)
    else:
        st.caption("This report has no threat rows (a model without a denoiser: every attack is white-box).")
    st.markdown("**Gradient-masking checks**")
    if rep.checks:
        st.caption(f"Checks: {checks_summary(rep)}.")
        for c in rep.failed_checks:
            st.error(f"FAILED {c.name}: {c.detail}: the robust accuracy may be far too high.")
        for c in rep.unrun_checks:
            st.warning(f"NOT RUN {c.name}: {c.detail}: this check guards nothing in this report.")
        st.dataframe(reports.check_table(rep), hide_index=True)
    else:
        st.warning("The checks were not run: nothing guards these numbers against gradient masking.")
    for w in rep.warnings:
        st.warning(w)
    for r in rep.results:
        with st.expander(f"eps {eps_label(rep, r.eps)}: attacks"):
            table = reports.attack_table(rep, r)
            if table:
                st.dataframe(table, hide_index=True)
            else:
                st.caption("No attack runs at this epsilon.")
    st.download_button("report.md", report_markdown(rep), file_name="report.md", key=f"{KEY}_md_{entry.path}")


def _explanations(entry: reports.ReportEntry) -> None:
    data = reports.load_json(entry.path)
    st.subheader(f"Explanations: {entry.title}")
    attack = data.get("attack")
    st.markdown(f"- **methods**: {', '.join(data.get('methods') or [])}\n- **images**: {data.get('n')}"
                + (f"\n- **attack**: {attack_heading(attack)}" if isinstance(attack, dict) else ""))  # fmt: skip
    png = (data.get("png") or {}).get("file")
    if png and (entry.path.parent / png).is_file():
        st.image(str(entry.path.parent / png), caption=(data.get("png") or {}).get("colors"))
    st.dataframe(explain_table(data), hide_index=True)
    quality = entry.path.parent / "metrics.json"
    if quality.is_file():
        st.markdown("**Quality of the maps** (metrics.json)")
        st.dataframe(quality_table(reports.load_json(quality)), hide_index=True)


def _quality(entry: reports.ReportEntry) -> None:
    st.subheader(f"Explanation quality: {entry.title}")
    st.dataframe(quality_table(reports.load_json(entry.path)), hide_index=True)


def _label(e: reports.ReportEntry) -> str:
    extra = ""
    if e.kind == reports.ROBUSTNESS:
        extra = f" ({e.info.get('suite') or 'attacks'}, {e.info.get('norm')}, n={e.info.get('n')})"
    return f"{e.kind}: {e.title}{extra}" + (" [unreadable]" if e.error else "")


def main() -> None:
    st.title("Reports")
    root = settings.runs_dir()
    if not Path(root).is_dir():
        st.info(f"The runs folder {str(root)!r} does not exist yet.")
        return
    entries = reports.find_reports(root)
    bad = [e for e in entries if e.error]
    for e in bad:
        st.warning(f"{e.path}: {e.error}")
    good = [e for e in entries if not e.error]
    if not good:
        st.info(f"No report under {str(root)!r} yet: `lab eval --model RUN` writes a robustness report, "
                "`lab explain ... --out DIR` an explanation report.")  # fmt: skip
        return
    kinds = [k for k in (reports.ROBUSTNESS, reports.EXPLANATIONS, reports.QUALITY) if any(e.kind == k for e in good)]
    st.caption(", ".join(f"{sum(e.kind == k for e in good)} {k}" for k in kinds) + f" report(s) under {str(root)!r}")
    by: dict[str, Any] = {str(e.path): e for e in good}
    chosen = st.selectbox("Report", list(by), key=f"{KEY}_choice", format_func=lambda p: _label(by[p]))
    entry = by[chosen]
    with user_errors():
        if entry.kind == reports.ROBUSTNESS:
            _robustness(entry)
        elif entry.kind == reports.EXPLANATIONS:
            _explanations(entry)
        else:
            _quality(entry)


if __name__ == "__main__":
    with user_errors():
        main()
