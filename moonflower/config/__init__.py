"""Configuration: the settings catalogue, where values come from (environment, TOML, *_FILE),
how each is parsed and checked, and the frozen result.
"""
