"""The JSON Schemas of recipe's documents, shipped as package data (``engine.schema``).

This file only makes the folder a regular package so that ``importlib.resources`` finds it in an
editable install as well as in a wheel.
"""
