// SeedTensor module.
