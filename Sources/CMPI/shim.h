#ifndef SEED_CMPI_SHIM_H
#define SEED_CMPI_SHIM_H
// Open MPI for Swift. Open MPI defines its predefined handles (communicators, datatypes, operations, sentinels)
// as macros that cast the address of a global, which Swift does not import; these getters expose them.
#include <mpi.h>

static inline MPI_Comm seed_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm seed_mpi_comm_null(void) { return MPI_COMM_NULL; }

static inline MPI_Datatype seed_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype seed_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype seed_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype seed_mpi_int(void) { return MPI_INT; }
static inline MPI_Datatype seed_mpi_int32_t(void) { return MPI_INT32_T; }
static inline MPI_Datatype seed_mpi_int64_t(void) { return MPI_INT64_T; }
static inline MPI_Datatype seed_mpi_uint8_t(void) { return MPI_UINT8_T; }
static inline MPI_Datatype seed_mpi_uint64_t(void) { return MPI_UINT64_T; }

static inline MPI_Op seed_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op seed_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op seed_mpi_min(void) { return MPI_MIN; }

static inline void *seed_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Request seed_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *seed_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *seed_mpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
static inline MPI_Errhandler seed_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }

#endif
