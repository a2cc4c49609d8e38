"""`moonflower run`: the schedules and the physical services beside them."""
