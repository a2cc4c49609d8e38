"""What Moonflower does to backups: make them, restore, verify, prune, and the preflight check."""
