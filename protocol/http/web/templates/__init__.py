"""Shared Jinja2 templates of the web pages (a package so the HTML ships in the wheel)."""
