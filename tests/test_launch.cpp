// Launching the way PyTorch users do: halftorch's TCPStore against PyTorch 2.x's (its client with torch's server,
// torch's client with its server), the variables of torchrun, mpirun and srun, torchrun's error file, and real
// torchrun runs (dist_worker, train_resnet18 giving scripts/launch's model bit for bit). The torch parts need
// the PyPI torch 2.x venv (scripts/torch-venv) and say they were skipped without it.
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <future>
#include <map>
#include <regex>
#include <thread>

#include "distributed/launch_env.h"
#include "distributed/store.h"
#include "tests/helpers.h"

using namespace ht;
using namespace ht::testing;
namespace dist = ht::distributed;
using std::chrono::milliseconds;

namespace {

std::vector<char> bytes(const std::string& s) { return {s.begin(), s.end()}; }

std::string slurp(const std::filesystem::path& p) {
  std::stringstream ss;
  ss << std::ifstream(p).rdbuf();
  return ss.str();
}

// Runs a shell command in the background (no Catch macros off the test's thread).
std::future<CommandResult> start_command(const std::string& cmd) {
  return std::async(std::launch::async, [cmd] {
    std::string out;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return CommandResult{-1, "popen failed"};
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int status = pclose(p);
    return CommandResult{WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
  });
}

// Waits (at most 30 s) for a file another process writes, and returns its contents.
std::string wait_for_file(const std::filesystem::path& p, std::future<CommandResult>& writer) {
  for (int i = 0; i < 3000; ++i) {
    if (std::filesystem::exists(p) && std::filesystem::file_size(p) > 0) return slurp(p);
    if (writer.wait_for(milliseconds(10)) == std::future_status::ready) {
      CommandResult r = writer.get();
      FAIL("the Python side exited before writing " << p << " (exit " << r.exit_code << "):\n" << r.output);
    }
  }
  FAIL("no " << p << " after 30 s");
  return "";
}

dist::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

std::string sh_quote(const std::string& s) { return "'" + s + "'"; }

}  // namespace

TEST_CASE("TCPStore: halftorch's client against torch.distributed.TCPStore(is_master=True)", "[launch][torch2]") {
  std::string py = torch2_python();
  if (py.empty()) return;
  auto dir = temp_dir("launch-torch-server");
  std::filesystem::remove(dir / "port");
  std::string code =
      "import datetime, time, torch.distributed as d\n"
      "m = d.TCPStore('127.0.0.1', 0, is_master=True, wait_for_workers=False,\n"
      "               timeout=datetime.timedelta(seconds=30))\n"
      "m.set('py', b'hello')\n"
      "open('" + (dir / "port.tmp").string() + "', 'w').write(str(m.port))\n"
      "import os; os.rename('" + (dir / "port.tmp").string() + "', '" + (dir / "port").string() + "')\n"
      "m.wait(['ht/ready'])\n"
      "time.sleep(0.3)\n"
      "m.set('late', b'!')\n"
      "m.wait(['ht/done'])\n"
      "assert m.get('ht/bin') == b'x\\x00y', m.get('ht/bin')\n"
      "assert m.get('counter') == b'7', m.get('counter')\n"
      "assert m.get('cas') == b'v2', m.get('cas')\n"
      "assert m.get('ns/k') == b'in a namespace'\n"
      "assert not m.check(['py'])\n"
      "print('python sees', m.num_keys(), 'keys')\n";
  std::ofstream(dir / "server.py") << code;
  auto python = start_command(py + " " + (dir / "server.py").string());
  int port = std::stoi(wait_for_file(dir / "port", python));

  dist::TCPStore c("127.0.0.1", port, false, milliseconds(5000));
  REQUIRE(c.get("py") == bytes("hello"));
  REQUIRE(c.add("counter", 5) == 5);
  REQUIRE(c.add("counter", 2) == 7);
  REQUIRE(c.get("counter") == bytes("7"));  // torch keeps counters as decimal text
  c.set("ht/bin", {'x', '\0', 'y'});
  REQUIRE(c.compare_set("cas", {}, bytes("v1")) == bytes("v1"));        // absent, expected absent: created
  REQUIRE(c.compare_set("cas", bytes("zz"), bytes("v2")) == bytes("v1"));  // wrong expectation: unchanged
  REQUIRE(c.compare_set("cas", bytes("v1"), bytes("v2")) == bytes("v2"));
  REQUIRE(c.check({"py", "counter"}));
  REQUIRE_FALSE(c.check({"py", "never"}));
  // a wait that times out is withdrawn (CANCEL_WAIT), and the connection stays usable
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE_THROWS_WITH(c.wait({"py", "never"}, milliseconds(300)),
                      Catch::Contains("timed out after 0.3 s waiting for key 'never'"));
  REQUIRE(std::chrono::steady_clock::now() - t0 < milliseconds(3000));
  REQUIRE(c.get("py") == bytes("hello"));
  int64_t before = c.num_keys();
  REQUIRE(c.delete_key("py"));
  REQUIRE_FALSE(c.delete_key("py"));
  REQUIRE(c.num_keys() == before - 1);
  dist::TCPStore namespaced("127.0.0.1", port, false, milliseconds(5000), "ns/");
  namespaced.set("k", bytes("in a namespace"));
  // a get blocks until torch's side sets the key
  c.set("ht/ready", {});
  REQUIRE(c.get("late") == bytes("!"));
  c.set("ht/done", {});
  CommandResult r = python.get();
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // torch counts the keys halftorch left: py deleted; late, counter, cas, ht/bin, ht/ready, ht/done, ns/k
  REQUIRE_THAT(r.output, Catch::Contains("python sees 7 keys"));
}

TEST_CASE("TCPStore: torch.distributed.TCPStore's client against halftorch's server", "[launch][torch2]") {
  std::string py = torch2_python();
  if (py.empty()) return;
  auto dir = temp_dir("launch-ht-server");
  dist::TCPStore server("127.0.0.1", 0, true, milliseconds(5000));
  server.set("from_ht", bytes("halftorch"));
  std::string code =
      "import datetime, time, torch.distributed as d\n"
      "s = d.TCPStore('127.0.0.1', " + std::to_string(server.port()) + ", is_master=False,\n"
      "               wait_for_workers=False, timeout=datetime.timedelta(seconds=10))\n"
      "assert s.get('from_ht') == b'halftorch'\n"
      "s.set('from_py', b'\\x00torch\\xff')\n"
      "assert s.add('n', 3) == 3 and s.add('n', -1) == 2 and s.get('n') == b'2'\n"
      "assert s.compare_set('c', '', 'a') == b'a'\n"
      "assert s.compare_set('c', 'x', 'b') == b'a'\n"
      "assert s.compare_set('c', 'a', 'b') == b'b'\n"
      "assert s.check(['from_ht', 'n']) and not s.check(['never'])\n"
      "t = time.time()\n"
      "try:\n"
      "    s.wait(['never'], datetime.timedelta(milliseconds=300))\n"
      "    raise SystemExit('wait did not time out')\n"
      "except d.DistStoreError:\n"
      "    pass\n"
      "assert time.time() - t < 3\n"
      "s.append('log', b'ab'); s.append('log', b'cd'); assert s.get('log') == b'abcd'\n"
      "s.multi_set(['m1', 'm2'], [b'1', b'2']); assert s.multi_get(['m1', 'm2']) == [b'1', b'2']\n"
      "assert s.delete_key('m1') and not s.delete_key('m1')\n"
      "print('keys', s.num_keys())\n"
      "s.wait(['later'])\n"
      "assert s.get('later') == b'set by halftorch while torch waited'\n"
      "print('ok')\n";
  std::ofstream(dir / "client.py") << code;
  auto python = start_command(py + " " + (dir / "client.py").string());
  // torch's client waits on a key halftorch sets once the rest is done
  for (int i = 0; i < 3000 && !server.check({"m2"}); ++i) {
    if (python.wait_for(milliseconds(10)) == std::future_status::ready) break;
  }
  std::this_thread::sleep_for(milliseconds(200));
  server.set("later", bytes("set by halftorch while torch waited"));
  CommandResult r = python.get();
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE_THAT(r.output, Catch::Contains("ok"));
  // from_ht, from_py, n, c, log, m2, and later was not there yet
  REQUIRE_THAT(r.output, Catch::Contains("keys 6"));
  REQUIRE(server.get("from_py") == std::vector<char>{'\0', 't', 'o', 'r', 'c', 'h', char(0xff)});
  REQUIRE(server.num_keys() == 7);
}

TEST_CASE("TCPStore: a server that does not speak torch's protocol is named", "[launch]") {
  // a listener that accepts and says nothing
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 4) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  REQUIRE_THROWS_WITH(dist::TCPStore("127.0.0.1", port, false, milliseconds(300)),
                      Catch::Contains("does not answer PyTorch's TCPStore handshake"));
  ::close(fd);
}

TEST_CASE("TCPStore server: concurrent clients, waits answered by other clients' sets, strangers hung up on",
          "[launch]") {
  dist::TCPStore server("127.0.0.1", 0, true, milliseconds(5000));
  int port = server.port();
  // a WAIT on several keys is answered once the last of them is set, by whichever client sets it
  std::vector<std::string> errors(5);  // a thread's exception, reported on the test's thread
  std::thread waiter([port, &errors] {
    try {
      dist::TCPStore c("127.0.0.1", port, false, milliseconds(5000));
      c.wait({"k0", "k1", "k2", "k3"});
      c.set("waiter/done", {'1'});
    } catch (const std::exception& e) {
      errors[4] = e.what();
    }
  });
  std::vector<std::thread> adders;
  for (int t = 0; t < 4; ++t)
    adders.emplace_back([port, t, &errors] {
      try {
        dist::TCPStore c("127.0.0.1", port, false, milliseconds(5000));
        for (int i = 0; i < 50; ++i) c.add("counter", 1);
        c.set("k" + std::to_string(t), {});
      } catch (const std::exception& e) {
        errors[size_t(t)] = e.what();
      }
    });
  for (auto& a : adders) a.join();
  waiter.join();
  for (const auto& e : errors) REQUIRE(e == "");
  REQUIRE(server.get("waiter/done") == bytes("1"));
  REQUIRE(server.add("counter", 0) == 200);
  // a client that skips torch's VALIDATE handshake is disconnected, not served
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(port));
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  char get_query[] = {3, 1, 0, 0, 0, 0, 0, 0, 0, 'k'};  // GET "k" without VALIDATE
  REQUIRE(::send(fd, get_query, sizeof get_query, MSG_NOSIGNAL) == ssize_t(sizeof get_query));
  char byte = 0;
  ssize_t got = ::recv(fd, &byte, 1, 0);
  // closed: an orderly end, or a reset (the server hung up with the rest of the query unread)
  REQUIRE((got == 0 || (got < 0 && errno == ECONNRESET)));
  ::close(fd);
}

TEST_CASE("launch variables: torchrun, mpirun and srun, each wrong or missing one named", "[launch]") {
  using dist::read_launch_env;
  SECTION("torchrun") {
    dist::LaunchEnv e = read_launch_env(env_of({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"},
                                                {"LOCAL_WORLD_SIZE", "2"}, {"GROUP_RANK", "1"},
                                                {"MASTER_ADDR", "host0"}, {"MASTER_PORT", "29400"},
                                                {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                                {"TORCHELASTIC_RUN_ID", "job7"},
                                                {"TORCHELASTIC_RESTART_COUNT", "2"},
                                                {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}));
    REQUIRE(e.launcher == "torchrun");  // torchrun's variables win over the allocation's
    REQUIRE(e.rank == 3);
    REQUIRE(e.world_size == 4);
    REQUIRE(e.local_rank == 1);
    REQUIRE(e.local_world_size == 2);
    REQUIRE(e.node_rank == 1);
    REQUIRE(e.master_addr == "host0");
    REQUIRE(e.master_port == 29400);
    REQUIRE(e.use_agent_store);
    REQUIRE(e.store_namespace() == "halftorch/job7/2/");
    // scripts/launch: the same variables, no agent
    dist::LaunchEnv l = read_launch_env(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1234"}}));
    REQUIRE_FALSE(l.use_agent_store);
    REQUIRE(l.local_rank == 0);
    REQUIRE(l.store_namespace() == "halftorch/none/0/");
    REQUIRE_THROWS_WITH(read_launch_env(env_of({{"RANK", "1"}})), Catch::Contains("RANK is set but WORLD_SIZE is not"));
    REQUIRE_THROWS_WITH(read_launch_env(env_of({{"WORLD_SIZE", "2"}})),
                        Catch::Contains("WORLD_SIZE=2 is set but RANK is not"));
    REQUIRE_THROWS_WITH(read_launch_env(env_of({{"WORLD_SIZE", "two"}, {"RANK", "0"}})),
                        Catch::Contains("WORLD_SIZE must be an integer, got 'two'"));
    REQUIRE_THROWS_WITH(read_launch_env(env_of({{"WORLD_SIZE", "2"}, {"RANK", "2"}})),
                        Catch::Contains("RANK must be in [0, WORLD_SIZE=2), got 2"));
    REQUIRE_THROWS_WITH(read_launch_env(env_of({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "70000"}})),
                        Catch::Contains("MASTER_PORT must be a port number in 1..65535, got 70000"));
    REQUIRE_THROWS_WITH(read_launch_env(env_of({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "h"},
                                                {"TORCHELASTIC_USE_AGENT_STORE", "True"}})),
                        Catch::Contains("TORCHELASTIC_USE_AGENT_STORE=True but MASTER_PORT is not set"));
    REQUIRE_THROWS_WITH(read_launch_env(env_of({{"WORLD_SIZE", "2"}, {"RANK", "0"},
                                                {"TORCHELASTIC_RESTART_COUNT", "x"}})),
                        Catch::Contains("TORCHELASTIC_RESTART_COUNT must be an integer, got 'x'"));
  }
  SECTION("srun") {
    dist::LaunchEnv e = read_launch_env(env_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                                                {"SLURM_NODEID", "2"}, {"SLURM_JOB_ID", "123456"},
                                                {"SLURM_JOB_NODELIST", "gpu[007-009,12],login1"}}));
    REQUIRE(e.launcher == "slurm");
    REQUIRE(e.rank == 5);
    REQUIRE(e.world_size == 8);
    REQUIRE(e.local_rank == 1);
    REQUIRE(e.node_rank == 2);
    REQUIRE(e.master_addr == "gpu007");
    REQUIRE(e.master_port == 10000 + 123456 % 20000);
    REQUIRE(e.rank_variable() == "SLURM_PROCID");
    dist::LaunchEnv given = read_launch_env(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"},
                                                    {"SLURM_LOCALID", "0"}, {"SLURM_JOB_NODELIST", "a,b"},
                                                    {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "29501"}}));
    REQUIRE(given.master_addr == "10.0.0.1");
    REQUIRE(given.master_port == 29501);
    // one task needs no host list, and takes any free port (no clash with another one-task step on the node)
    dist::LaunchEnv one = read_launch_env(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"},
                                                  {"SLURM_LOCALID", "0"}, {"SLURM_JOB_ID", "42"}}));
    REQUIRE(one.world_size == 1);
    REQUIRE(one.master_addr.empty());
    REQUIRE(one.master_port == -1);
    REQUIRE(one.store_namespace() == "halftorch/slurm-42/0/");
    REQUIRE_THROWS_WITH(read_launch_env(env_of({{"SLURM_PROCID", "0"}, {"SLURM_LOCALID", "0"}})),
                        Catch::Contains("SLURM_PROCID is set (srun) but SLURM_NTASKS is not set"));
    REQUIRE_THROWS_WITH(read_launch_env(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}})),
                        Catch::Contains("but SLURM_LOCALID is not set"));
    REQUIRE_THROWS_WITH(read_launch_env(env_of({{"SLURM_PROCID", "2"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "0"},
                                                {"SLURM_JOB_NODELIST", "a"}})),
                        Catch::Contains("SLURM_PROCID must be in [0, SLURM_NTASKS=2), got 2"));
    REQUIRE_THROWS_WITH(read_launch_env(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "0"}})),
                        Catch::Contains("needs MASTER_ADDR or SLURM_JOB_NODELIST"));
    REQUIRE(dist::first_slurm_host("node1") == "node1");
    REQUIRE(dist::first_slurm_host("a-1,b") == "a-1");
    REQUIRE(dist::first_slurm_host("rack[2-3]-n[01-04]") == "rack2-n01");
    REQUIRE(dist::first_slurm_host("n[5,7]") == "n5");
    REQUIRE_THROWS_WITH(dist::first_slurm_host("n[1-"), Catch::Contains("cannot read a host from SLURM_JOB_NODELIST"));
  }
  SECTION("mpirun") {
    dist::LaunchEnv e = read_launch_env(env_of({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"},
                                                {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                                {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                                // mpirun inside an sbatch script: the batch step's task 0
                                                {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}));
    REQUIRE(e.launcher == "mpi");
    REQUIRE(e.rank == 1);
    REQUIRE(e.world_size == 2);
    REQUIRE(e.local_rank == 1);
    REQUIRE(e.master_addr == "127.0.0.1");  // every rank on this machine
    REQUIRE_THROWS_WITH(read_launch_env(env_of({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "4"},
                                                {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                                {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}})),
                        Catch::Contains("mpirun across machines") && Catch::Contains("needs MASTER_ADDR"));
    REQUIRE_THROWS_WITH(read_launch_env(env_of({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}})),
                        Catch::Contains("but OMPI_COMM_WORLD_LOCAL_RANK is not set"));
    REQUIRE_THROWS_WITH(read_launch_env(env_of({{"OMPI_COMM_WORLD_RANK", "-1"}, {"OMPI_COMM_WORLD_SIZE", "2"},
                                                {"OMPI_COMM_WORLD_LOCAL_RANK", "0"}})),
                        Catch::Contains("OMPI_COMM_WORLD_RANK must be in [0, OMPI_COMM_WORLD_SIZE=2), got -1"));
  }
  SECTION("none") {
    REQUIRE_FALSE(dist::launcher_detected(env_of({{"MASTER_PORT", "1"}})));
    REQUIRE(dist::launcher_detected(env_of({{"SLURM_PROCID", "0"}})));
    REQUIRE(read_launch_env(env_of({})).launcher == "none");
  }
}

TEST_CASE("report_failure writes the error file torchrun reads", "[launch][torch2]") {
  auto dir = temp_dir("launch-error-file");
  std::string path = (dir / "error.json").string();
  ::unsetenv("TORCHELASTIC_ERROR_FILE");
  REQUIRE_FALSE(dist::report_failure(std::runtime_error("nowhere to write")));
  ::setenv("TORCHELASTIC_ERROR_FILE", path.c_str(), 1);
  bool wrote = dist::report_failure(std::runtime_error("[distributed] bad \"quote\"\nline two \x01 caf\xc3\xa9 \xff"));
  ::unsetenv("TORCHELASTIC_ERROR_FILE");
  REQUIRE(wrote);
  std::string py = torch2_python();
  if (py.empty()) return;
  // torchrun's own reader of the file: its summary prints this message
  std::string out = run_python(
      "from torch.distributed.elastic.multiprocessing.errors import ProcessFailure\n"
      "f = ProcessFailure(local_rank=0, pid=1, exitcode=1, error_file='" + path + "')\n"
      "print(repr(f.message['message']), f.timestamp > 0)\n",
      dir, py);
  REQUIRE_THAT(out, Catch::Contains("'[distributed] bad \"quote\"\\nline two \\x01 caf\xc3\xa9 \xc3\xbf' True"));
}

TEST_CASE("ranks meet in an agent's store (TORCHELASTIC_USE_AGENT_STORE), under the run's and restart's keys",
          "[launch][torch2]") {
  std::string py = torch2_python();
  if (py.empty()) return;
  auto dir = temp_dir("launch-agent-store");
  std::filesystem::remove(dir / "port");
  // torch serves the store as torchrun's agent does; both ranks are its clients (rank 0 must not bind the port)
  std::string code =
      "import datetime, os, torch.distributed as d\n"
      "m = d.TCPStore('127.0.0.1', 0, is_master=True, wait_for_workers=False,\n"
      "               timeout=datetime.timedelta(seconds=60))\n"
      "open('" + (dir / "port.tmp").string() + "', 'w').write(str(m.port))\n"
      "os.rename('" + (dir / "port.tmp").string() + "', '" + (dir / "port").string() + "')\n"
      "m.wait(['done'])\n"
      "print('attempt 1 keys:', m.check(['halftorch/job/1/gloo/0', 'halftorch/job/1/gloo/1']))\n"
      "print('attempt 0 keys:', m.check(['halftorch/job/0/gloo/0']))\n";
  std::ofstream(dir / "agent.py") << code;
  auto agent = start_command(py + " " + (dir / "agent.py").string());
  std::string port = wait_for_file(dir / "port", agent);
  std::string common = "TORCHELASTIC_USE_AGENT_STORE=True TORCHELASTIC_RUN_ID=job TORCHELASTIC_RESTART_COUNT=1 "
                       "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port + " WORLD_SIZE=2 HT_DIST_TIMEOUT=20 "
                       "OMP_NUM_THREADS=1 ";
  std::string w = bin("dist_worker");
  CommandResult ranks = run_command("cd " + dir.string() + " && (" + common + "RANK=0 LOCAL_RANK=0 " + w +
                                    " init > r0.out 2>&1 & " + common + "RANK=1 LOCAL_RANK=1 " + w +
                                    " init > r1.out 2>&1; c1=$?; wait $!; c0=$?; exit $((c0 + c1)))");
  std::string outs = slurp(dir / "r0.out") + slurp(dir / "r1.out");
  dist::TCPStore("127.0.0.1", std::stoi(port), false, milliseconds(5000)).set("done", {});
  CommandResult a = agent.get();
  INFO(outs << "\n" << a.output);
  REQUIRE(ranks.exit_code == 0);
  REQUIRE_THAT(outs, Catch::Contains("rank 0 of 2") && Catch::Contains("rank 1 of 2"));
  REQUIRE(a.exit_code == 0);
  REQUIRE_THAT(a.output, Catch::Contains("attempt 1 keys: True") && Catch::Contains("attempt 0 keys: False"));
}

TEST_CASE("torchrun starts halftorch programs; a failing rank's message reaches torchrun's summary",
          "[launch][torch2]") {
  std::string py = torch2_python();
  if (py.empty()) return;
  std::string torchrun = std::filesystem::path(py).parent_path() / "torchrun";
  auto dir = temp_dir("launch-torchrun");
  auto torchrun_worker = [&](const std::string& timeout, const std::string& mode) {
    return run_command("cd " + dir.string() + " && OMP_NUM_THREADS=1 HT_DIST_TIMEOUT=" + timeout + " " + torchrun +
                       " --standalone --nproc-per-node 2 --no-python " + bin("dist_worker") + " " + mode);
  };
  CommandResult ok = torchrun_worker("30", "collectives");
  INFO(ok.output);
  REQUIRE(ok.exit_code == 0);
  REQUIRE_THAT(ok.output, Catch::Contains("rank 0 of 2: collectives ok") && Catch::Contains("rank 1 of 2: collectives ok"));
  CommandResult bad = torchrun_worker("soon", "init");
  INFO(bad.output);
  REQUIRE(bad.exit_code != 0);
  // the summary's traceback line carries halftorch's message, read from the error file; torchrun folds long
  // summary lines, so runs of whitespace are compared as one space
  std::string summary = std::regex_replace(bad.output, std::regex("\\s+"), " ");
  REQUIRE_THAT(summary, Catch::Contains("traceback : [distributed] HT_DIST_TIMEOUT must be a positive number of "
                                        "seconds, got 'soon'"));
  REQUIRE_THAT(bad.output, !Catch::Contains("error_file: <N/A>"));
}

TEST_CASE("torchrun: --max-restarts after a rank is killed", "[launch][torch2]") {
  std::string py = torch2_python();
  if (py.empty()) return;
  std::string torchrun = std::filesystem::path(py).parent_path() / "torchrun";
  auto dir = temp_dir("launch-torchrun-nodes");
  std::string env = "cd " + dir.string() + " && export OMP_NUM_THREADS=1 HT_DIST_TIMEOUT=30 && ";
  // attempt 0: rank 1 is killed after 3 all-reduces (rank 0 fails on the lost peer); torchrun restarts the
  // group, whose ranks meet under attempt 1's keys and finish
  std::ofstream(dir / "attempt.sh") << "#!/bin/sh\n"
                                       "if [ \"$TORCHELASTIC_RESTART_COUNT\" = 0 ]; then exec \"$1\" fail die 1 3; fi\n"
                                       "exec \"$1\" collectives\n";
  std::filesystem::permissions(dir / "attempt.sh", std::filesystem::perms::owner_all);
  CommandResult restarted = run_command(env + torchrun + " --standalone --max-restarts 1 --nproc-per-node 2 " +
                                        "--no-python ./attempt.sh " + bin("dist_worker"));
  INFO(restarted.output);
  REQUIRE(restarted.exit_code == 0);
  REQUIRE_THAT(restarted.output, Catch::Contains("all_reduce failed on rank 0 of 2"));
  REQUIRE_THAT(restarted.output, Catch::Contains("rank 0 of 2: collectives ok") &&
                                     Catch::Contains("rank 1 of 2: collectives ok"));
}

TEST_CASE("train_resnet18 under torchrun writes scripts/launch's model_fp16.pth bit for bit", "[launch][torch2]") {
  std::string py = torch2_python();
  if (py.empty()) return;
  std::string torchrun = std::filesystem::path(py).parent_path() / "torchrun";
  auto dir = temp_dir("launch-torchrun-train");
  std::string flags = " --device cpu --limit 256 --batch-size 32 --out ";
  std::string env = "cd " + dir.string() + " && OMP_NUM_THREADS=1 ";
  CommandResult t = run_command(env + torchrun + " --standalone --nproc-per-node 2 --no-python " +
                                bin("train_resnet18") + flags + "torchrun.pth");
  INFO(t.output);
  REQUIRE(t.exit_code == 0);
  REQUIRE_THAT(t.output, Catch::Contains("2 processes (gloo)"));
  size_t lines = 0;
  for (size_t at = t.output.find("test accuracy: "); at != std::string::npos; at = t.output.find("test accuracy: ", at + 1))
    ++lines;
  REQUIRE(lines == 1);  // rank 0 alone speaks
  CommandResult l = run_command(env + std::string(HT_SOURCE_DIR) + "/scripts/launch -n 2 " + bin("train_resnet18") +
                                flags + "launch.pth");
  INFO(l.output);
  REQUIRE(l.exit_code == 0);
  std::string a = slurp(dir / "torchrun.pth"), b = slurp(dir / "launch.pth");
  REQUIRE(a.size() > 1000000);  // ResNet-18 in fp16
  REQUIRE(a == b);

  // two torchrun agents ("nodes") of one process each on localhost, meeting at node 0's agent, equal one node
  // with two processes
  std::string node = torchrun + " --nnodes 2 --nproc-per-node 1 --master-addr 127.0.0.1 --master-port " +
                     std::to_string(free_port()) + " --node-rank ";
  std::string trainer = " --no-python " + bin("train_resnet18") + flags;
  CommandResult nodes = run_command("cd " + dir.string() + " && export OMP_NUM_THREADS=1 && (" + node + "1" + trainer + "node1.pth > n1.out 2>&1 & " + node + "0" +
                                    trainer + "nodes.pth > n0.out 2>&1; c0=$?; wait $!; c1=$?; exit $((c0 + c1)))");
  INFO(slurp(dir / "n0.out") + slurp(dir / "n1.out"));
  REQUIRE(nodes.exit_code == 0);
  REQUIRE(slurp(dir / "nodes.pth") == a);

  // elastic restart: rank 1 of the first attempt is killed at its 3rd step; torchrun restarts the group, whose
  // ranks resume from the last checkpoint (--resume auto, saved every 2 steps) and finish with exactly the
  // weights of the uninterrupted run
  std::string resumable = flags + "elastic.pth --checkpoint ck.pth --save-every 2 --resume auto";
  std::ofstream(dir / "attempt.sh") << "#!/bin/sh\n"
                                       "if [ \"$TORCHELASTIC_RESTART_COUNT\" = 0 ] && [ \"$RANK\" = 1 ]; then\n"
                                       "  export HT_TRAIN_KILL_AT=step:3\n"
                                       "fi\n"
                                       "exec \"$@\"\n";
  std::filesystem::permissions(dir / "attempt.sh", std::filesystem::perms::owner_all);
  CommandResult elastic = run_command(env + "HT_DIST_TIMEOUT=60 " + torchrun + " --standalone --max-restarts 1 " +
                                      "--nproc-per-node 2 --no-python ./attempt.sh " + bin("train_resnet18") +
                                      resumable);
  INFO(elastic.output);
  REQUIRE(elastic.exit_code == 0);
  REQUIRE_THAT(elastic.output, Catch::Contains("all_reduce failed on rank 0 of 2"));  // attempt 0 broke
  REQUIRE_THAT(elastic.output, Catch::Contains("resuming from ck.pth"));                // attempt 1 resumed
  REQUIRE(slurp(dir / "elastic.pth") == a);

  // a failing trainer's message reaches torchrun's summary through the error file
  CommandResult bad = run_command(env + torchrun + " --standalone --nproc-per-node 2 --no-python " +
                                  bin("train_resnet18") + flags + "x.pth --init missing-init.pth");
  INFO(bad.output);
  REQUIRE(bad.exit_code != 0);
  // torchrun's root cause is the rank that failed first, read from its error file; the other rank may have been
  // stopped by torchrun's SIGTERM before failing itself, and is then listed without an error file
  auto root = bad.output.find("Root Cause");
  REQUIRE(root != std::string::npos);
  std::string root_cause = bad.output.substr(root);
  REQUIRE_THAT(root_cause, Catch::Contains("traceback : --init missing-init.pth: [io] cannot open") &&
                               !Catch::Contains("error_file: <N/A>"));
}
