// SeedFormats module.
