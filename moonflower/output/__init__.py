"""What leaves the process for people and machines: logs, redaction, tables, progress,
webhooks.
"""
