// SeedEngine module.
