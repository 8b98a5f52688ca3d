"""Ingest: an upload's bytes in, everything the store writes out; no database, no Flask.

Read within the limit, validate by content, strip metadata, decode (libvips for JPEG photos,
Pillow otherwise), find the focal point, render the variants, compute the placeholder:
``pipeline.py`` lists those steps in order, and the store calls only it.
"""
