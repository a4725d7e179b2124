"""Jinja2 templates of the workbench pages (a package so the HTML ships in the wheel)."""
