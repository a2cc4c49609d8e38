"""The command line: arguments, the one place exceptions become exit statuses, each
command's work and its human tables."""
