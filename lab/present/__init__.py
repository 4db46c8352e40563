"""Presentation, shared by the CLI and the dashboard: terminal tables, Markdown, plots,
pictures and the files written for reports and runs. It reads results; it computes none.
"""
