#ifndef SEED_CBLAS_SHIM_H
#define SEED_CBLAS_SHIM_H
#include <cblas.h>
#endif
