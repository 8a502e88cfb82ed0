// SeedModels module.
