"""External processes joined by OS pipes: the one runner, spool files, gpg and OpenPGP, the
codec (compression and encryption, both ways), the feeder that streams downloads into a
pipeline."""
