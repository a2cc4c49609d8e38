"""Each job run and reported once, for the command line and the daemon alike: the logical
backup run and the base backup."""
