"""Packaged receipt templates (``<kind>.toml``); a store may override them in a directory."""
