"""recipe: declarative, reproducible build-and-verify for C, C++ and Rust."""

__version__ = "0.1.0"
