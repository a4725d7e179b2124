"""Jinja2 templates of the window pages (a package so the HTML ships in the wheel)."""
