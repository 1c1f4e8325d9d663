"""Serving exported SavedModels without TF Serving, and the predict client.

``server`` answers TF Serving's REST API (``rest`` parses and formats its
requests), ``repository`` loads and polls the versions of each model in a
model base path, and ``predict`` runs a SavedModel on image files.
"""
