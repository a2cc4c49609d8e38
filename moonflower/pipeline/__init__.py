"""External processes joined by OS pipes: the runner, compression, gpg stages, spool files."""
