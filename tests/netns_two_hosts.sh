#!/usr/bin/env bash
# Two "machines" on one: network namespaces joined by a veth pair, each with only its own address (so nothing
# can pass over loopback), then one dist_worker rank in each. Exit 77 when namespaces cannot be made here
# (not root, no ip): the caller skips. Usage: netns_two_hosts.sh DIST_WORKER MODE [ARGS...]
set -uo pipefail
worker=$1
shift
a=htA$$ b=htB$$ net=10.$(( $$ % 200 + 20 )).$(( ($$ / 200) % 250 + 1 ))
cleanup() { ip netns del "$a" 2>/dev/null; ip netns del "$b" 2>/dev/null; }
trap cleanup EXIT
{ ip netns add "$a" && ip netns add "$b" && ip link add "v$a" type veth peer name "v$b" &&
  ip link set "v$a" netns "$a" && ip link set "v$b" netns "$b" &&
  ip -n "$a" addr add "$net.1/24" dev "v$a" && ip -n "$b" addr add "$net.2/24" dev "v$b" &&
  ip -n "$a" link set "v$a" up && ip -n "$b" link set "v$b" up &&
  ip -n "$a" link set lo up && ip -n "$b" link set lo up; } 2>/dev/null || exit 77
port=29400
env RANK=0 WORLD_SIZE=2 MASTER_ADDR=$net.1 MASTER_PORT=$port OMP_NUM_THREADS=1 HT_DIST_TIMEOUT=20 \
  ip netns exec "$a" "$worker" "$@" > "$TMPDIR_OUT/host0.out" 2>&1 &
r0=$!
env RANK=1 WORLD_SIZE=2 MASTER_ADDR=$net.1 MASTER_PORT=$port OMP_NUM_THREADS=1 HT_DIST_TIMEOUT=20 \
  ip netns exec "$b" "$worker" "$@" > "$TMPDIR_OUT/host1.out" 2>&1
c1=$?
wait $r0
c0=$?
cat "$TMPDIR_OUT/host0.out" "$TMPDIR_OUT/host1.out"
# a MASTER_ADDR on that network where no machine answers: a clear error at the deadline
env RANK=1 WORLD_SIZE=2 MASTER_ADDR=$net.9 MASTER_PORT=$port HT_DIST_TIMEOUT=2 \
  ip netns exec "$b" "$worker" init 2>&1
c2=$?
echo "exit codes: $c0 $c1 $c2"
[ $c0 -eq 0 ] && [ $c1 -eq 0 ] && [ $c2 -eq 1 ]
