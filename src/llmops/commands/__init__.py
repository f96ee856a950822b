"""One module per CLI subcommand; each exposes ``register(subparsers)``.

Modules are discovered automatically so that adding a subcommand never means
editing a central list.
"""
