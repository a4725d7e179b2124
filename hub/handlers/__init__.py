"""Thin aiohttp route handlers: parse, authorize, call a service, render."""
