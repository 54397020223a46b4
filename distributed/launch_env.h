// ht::distributed::LaunchEnv: where a process group's settings come from, in this order:
//   torchrun (and scripts/launch, which sets the same variables): RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
//       GROUP_RANK, MASTER_ADDR, MASTER_PORT; TORCHELASTIC_USE_AGENT_STORE=True means torchrun's agent serves
//       the store at MASTER_ADDR:MASTER_PORT; TORCHELASTIC_RUN_ID and TORCHELASTIC_RESTART_COUNT name the attempt.
//   Open MPI's mpirun: OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE, with MASTER_ADDR (needed across
//       machines) and MASTER_PORT from the environment. Before Slurm: mpirun inside an sbatch script passes the
//       batch step's SLURM_PROCID=0 on to every rank.
//   Slurm's srun: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODEID; MASTER_ADDR, or the first host of
//       SLURM_JOB_NODELIST (SLURM_NODELIST); MASTER_PORT, or 10000 + SLURM_JOB_ID % 20000 (one port per job;
//       a world of one takes any free port).
// A malformed or missing variable is an error that names it. Also: report_failure, for torchrun's summary.
#pragma once
#include <exception>
#include <functional>
#include <optional>
#include <string>

namespace ht::distributed {

struct LaunchEnv {
  std::string launcher = "none";  // "torchrun" (or scripts/launch), "mpi", "slurm", or "none"
  int rank = 0, world_size = 1, local_rank = 0;
  int local_world_size = -1, node_rank = -1;  // -1: not given
  std::string master_addr;                   // "": not given
  int master_port = -1;                      // -1: not given
  bool use_agent_store = false;              // torchrun's agent serves the store; every rank is a client
  std::string run_id = "none";
  int restart_count = 0;
  // The store keys of this run and attempt live under it, so a restarted group never reads the Gloo addresses
  // or NCCL id of an earlier attempt: "halftorch/<run_id>/<restart_count>/".
  std::string store_namespace() const;
  // "RANK" under torchrun, "SLURM_PROCID" under Slurm, ...: for messages.
  std::string rank_variable() const;
};

// A variable's value; std::nullopt when unset (an empty value counts as unset).
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup process_env();

LaunchEnv read_launch_env(const EnvLookup& env = process_env());

// Whether some launcher's variables are present (no validation, never throws).
bool launcher_detected(const EnvLookup& env = process_env());

// The first host of a Slurm node list: "gpu[003-005,9],cpu1" -> "gpu003", "a-1,b" -> "a-1".
std::string first_slurm_host(const std::string& nodelist);

// When TORCHELASTIC_ERROR_FILE names a file, writes `e` there as torchrun's error JSON
// ({"message": {"message": ..., "extraInfo": {"timestamp": ...}}}), so torchrun's failure summary shows
// halftorch's message instead of "error_file: <N/A>". Call it in main()'s catch before returning the failure.
// Returns whether it wrote the file; never throws.
bool report_failure(const std::exception& e);
bool report_failure(const std::string& message);

}  // namespace ht::distributed
