// LaunchEnv: the variables of torchrun, mpirun and srun, each checked and named in its error; and torchrun's
// error file.
#include "distributed/launch_env.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "core/error.h"

namespace ht::distributed {

namespace {

std::optional<int> env_int(const EnvLookup& env, const std::string& name) {
  std::optional<std::string> v = env(name);
  if (!v) return std::nullopt;
  try {
    size_t used = 0;
    int x = std::stoi(*v, &used);
    if (used == v->size()) return x;
  } catch (const std::logic_error&) {
  }
  fail("[distributed] environment variable ", name, " must be an integer, got '", *v, "'");
}

int required_int(const EnvLookup& env, const std::string& name, const std::string& because) {
  std::optional<int> v = env_int(env, name);
  HT_CHECK(v, "[distributed] ", because, " but ", name, " is not set");
  return *v;
}

void check_rank_and_size(const LaunchEnv& e, const std::string& rank_name, const std::string& size_name,
                         const std::string& local_name) {
  HT_CHECK(e.world_size >= 1, "[distributed] ", size_name, " must be at least 1, got ", e.world_size);
  HT_CHECK(e.rank >= 0 && e.rank < e.world_size, "[distributed] ", rank_name, " must be in [0, ", size_name, "=",
           e.world_size, "), got ", e.rank);
  HT_CHECK(e.local_rank >= 0, "[distributed] ", local_name, " must be at least 0, got ", e.local_rank);
}

void read_master(const EnvLookup& env, LaunchEnv& e) {
  if (auto a = env("MASTER_ADDR")) e.master_addr = *a;
  if (auto p = env_int(env, "MASTER_PORT")) {
    HT_CHECK(*p >= 0 && *p < 65536, "[distributed] MASTER_PORT must be a port number in 1..65535, got ", *p);
    e.master_port = *p;
  }
}

LaunchEnv read_torchrun(const EnvLookup& env) {
  LaunchEnv e;
  e.launcher = "torchrun";
  std::optional<int> world = env_int(env, "WORLD_SIZE"), rank = env_int(env, "RANK");
  HT_CHECK(world, "[distributed] RANK is set but WORLD_SIZE is not (torchrun and scripts/launch set both)");
  e.world_size = *world;
  HT_CHECK(rank || e.world_size == 1, "[distributed] WORLD_SIZE=", e.world_size,
           " is set but RANK is not (torchrun and scripts/launch set both)");
  e.rank = rank.value_or(0);
  e.local_rank = env_int(env, "LOCAL_RANK").value_or(e.rank);
  e.local_world_size = env_int(env, "LOCAL_WORLD_SIZE").value_or(-1);
  e.node_rank = env_int(env, "GROUP_RANK").value_or(-1);
  check_rank_and_size(e, "RANK", "WORLD_SIZE", "LOCAL_RANK");
  HT_CHECK(e.local_world_size == -1 || e.local_world_size >= 1,
           "[distributed] LOCAL_WORLD_SIZE must be at least 1, got ", e.local_world_size);
  HT_CHECK(e.node_rank >= -1, "[distributed] GROUP_RANK must be at least 0, got ", e.node_rank);
  read_master(env, e);
  std::optional<std::string> agent = env("TORCHELASTIC_USE_AGENT_STORE");
  e.use_agent_store = agent && *agent == "True";
  if (e.use_agent_store) {
    HT_CHECK(!e.master_addr.empty() && e.master_port > 0, "[distributed] TORCHELASTIC_USE_AGENT_STORE=True but ",
             e.master_addr.empty() ? "MASTER_ADDR" : "MASTER_PORT",
             " is not set: torchrun names its agent's store there");
  }
  e.run_id = env("TORCHELASTIC_RUN_ID").value_or("none");
  e.restart_count = env_int(env, "TORCHELASTIC_RESTART_COUNT").value_or(0);
  HT_CHECK(e.restart_count >= 0, "[distributed] TORCHELASTIC_RESTART_COUNT must be at least 0, got ",
           e.restart_count);
  return e;
}

LaunchEnv read_mpi(const EnvLookup& env) {
  LaunchEnv e;
  e.launcher = "mpi";
  const std::string why = "OMPI_COMM_WORLD_RANK is set (mpirun)";
  e.rank = required_int(env, "OMPI_COMM_WORLD_RANK", why);
  e.world_size = required_int(env, "OMPI_COMM_WORLD_SIZE", why);
  e.local_rank = required_int(env, "OMPI_COMM_WORLD_LOCAL_RANK", why);
  e.local_world_size = env_int(env, "OMPI_COMM_WORLD_LOCAL_SIZE").value_or(-1);
  check_rank_and_size(e, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK");
  read_master(env, e);
  if (e.master_addr.empty()) {
    // every rank on this machine: rank 0 is local
    HT_CHECK(e.local_world_size == e.world_size, "[distributed] mpirun across machines (OMPI_COMM_WORLD_SIZE=",
             e.world_size, ", OMPI_COMM_WORLD_LOCAL_SIZE=", e.local_world_size,
             ") needs MASTER_ADDR, rank 0's host: mpirun -x MASTER_ADDR=host0 -x MASTER_PORT=29500 ...");
    e.master_addr = "127.0.0.1";
  }
  return e;
}

LaunchEnv read_slurm(const EnvLookup& env) {
  LaunchEnv e;
  e.launcher = "slurm";
  const std::string why = "SLURM_PROCID is set (srun)";
  e.rank = required_int(env, "SLURM_PROCID", why);
  e.world_size = required_int(env, "SLURM_NTASKS", why);
  e.local_rank = required_int(env, "SLURM_LOCALID", why);
  e.node_rank = env_int(env, "SLURM_NODEID").value_or(-1);
  check_rank_and_size(e, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID");
  read_master(env, e);
  std::optional<int> job = env_int(env, "SLURM_JOB_ID");
  if (job) e.run_id = "slurm-" + std::to_string(*job);
  e.restart_count = env_int(env, "SLURM_RESTART_COUNT").value_or(0);
  // a world of one meets nobody (and takes any free port: two one-task steps of a job may share a node)
  if (e.world_size == 1) return e;
  if (e.master_addr.empty()) {
    std::optional<std::string> nodes = env("SLURM_JOB_NODELIST");
    if (!nodes) nodes = env("SLURM_NODELIST");
    HT_CHECK(nodes, "[distributed] under Slurm (SLURM_PROCID is set) halftorch needs MASTER_ADDR or "
                    "SLURM_JOB_NODELIST to find rank 0's host; neither is set");
    e.master_addr = first_slurm_host(*nodes);
  }
  if (e.master_port < 0 && job) e.master_port = 10000 + (*job % 20000 + 20000) % 20000;
  return e;
}

// The length of the valid UTF-8 sequence at s[i], or 0.
size_t utf8_length(const std::string& s, size_t i) {
  unsigned char c = s[i];
  size_t n = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
  if (c >= 0xf5 || n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  unsigned char d = s[i + 1];
  // no overlong forms, no surrogates, nothing past U+10FFFF (Python's strict decoder refuses them)
  if ((c == 0xe0 && d < 0xa0) || (c == 0xed && d >= 0xa0) || (c == 0xf0 && d < 0x90) || (c == 0xf4 && d >= 0x90))
    return 0;
  return n;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = s[i];
    size_t n = c >= 0x80 ? utf8_length(s, i) : 0;
    if (n > 0) {
      out += s.substr(i, n);
      i += n - 1;
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      // control characters, and bytes that are not UTF-8 (as Latin-1 code points): always valid JSON
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

}  // namespace

std::string LaunchEnv::store_namespace() const {
  return "halftorch/" + run_id + "/" + std::to_string(restart_count) + "/";
}

std::string LaunchEnv::rank_variable() const {
  if (launcher == "mpi") return "OMPI_COMM_WORLD_RANK";
  if (launcher == "slurm") return "SLURM_PROCID";
  return "RANK";
}

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v || !*v) return std::nullopt;
    return std::string(v);
  };
}

bool launcher_detected(const EnvLookup& env) {
  for (const char* name : {"WORLD_SIZE", "RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"})
    if (env(name)) return true;
  return false;
}

LaunchEnv read_launch_env(const EnvLookup& env) {
  if (env("WORLD_SIZE") || env("RANK")) return read_torchrun(env);
  if (env("OMPI_COMM_WORLD_RANK")) return read_mpi(env);
  if (env("SLURM_PROCID")) return read_slurm(env);
  LaunchEnv e;
  read_master(env, e);
  return e;
}

std::string first_slurm_host(const std::string& nodelist) {
  std::string host;
  bool in_brackets = false, took = false;
  for (char c : nodelist) {
    if (!in_brackets && c == ',') break;
    if (c == '[') {
      in_brackets = true;
      took = false;
    } else if (c == ']') {
      in_brackets = false;
    } else if (!in_brackets) {
      host += c;
    } else if (c == ',' || c == '-') {
      took = true;  // the first range's first number is taken
    } else if (!took) {
      host += c;
    }
  }
  HT_CHECK(!host.empty() && !in_brackets, "[distributed] cannot read a host from SLURM_JOB_NODELIST '", nodelist,
           "'; set MASTER_ADDR");
  return host;
}

bool report_failure(const std::string& message) {
  std::optional<std::string> path = process_env()("TORCHELASTIC_ERROR_FILE");
  if (!path) return false;
  std::FILE* f = std::fopen(path->c_str(), "w");
  if (!f) return false;
  std::string json = "{\"message\": {\"message\": " + json_string(message) +
                     ", \"extraInfo\": {\"timestamp\": \"" + std::to_string(int64_t(std::time(nullptr))) + "\"}}}\n";
  bool ok = std::fwrite(json.data(), 1, json.size(), f) == json.size();
  return std::fclose(f) == 0 && ok;
}

bool report_failure(const std::exception& e) {
  try {
    return report_failure(std::string(e.what()));
  } catch (...) {
    return false;
  }
}

}  // namespace ht::distributed
