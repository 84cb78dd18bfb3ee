"""Sinks: where annotated frames go (files now; video writers and windows later)."""
