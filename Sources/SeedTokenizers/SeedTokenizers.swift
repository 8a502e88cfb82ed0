// SeedTokenizers module.
