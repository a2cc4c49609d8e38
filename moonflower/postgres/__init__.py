"""PostgreSQL: finding client tools new enough for the server, connecting without credentials
in argv, server queries, and what to dump.
"""
