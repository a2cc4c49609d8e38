"""S3: the gateway every request goes through, streamed multipart uploads, checksums, key
naming, the catalog of backups, the upload journal.
"""
