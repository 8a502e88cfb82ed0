// SeedKernels module.
