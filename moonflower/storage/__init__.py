"""S3: the gateway every request goes through, streamed multipart uploads, the upload
journal, checksums, flags and the archive's writer lease."""
