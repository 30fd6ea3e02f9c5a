# Sourced by .ci/run: makes sure a Redis server answers and exports REDIS_URL.
# Uses REDIS_URL when it answers, else 127.0.0.1:6379, else starts a throwaway redis-server on a spare
# port (installing it with apt-get when missing) and stops it when the run ends.

redis_answers() { redis-cli -u "$1" ping 2>/dev/null | grep -q PONG; }

ensure_redis() {
  # the outage test starts and stops its own redis-server, so the binary must be there in any case
  if ! command -v redis-server >/dev/null; then
    echo "ci: installing redis-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  if [ -n "${REDIS_URL:-}" ] && command -v redis-cli >/dev/null && redis_answers "$REDIS_URL"; then return; fi
  if command -v redis-cli >/dev/null && redis_answers redis://127.0.0.1:6379; then
    export REDIS_URL=redis://127.0.0.1:6379
    return
  fi
  local port dir
  port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
  dir=$(mktemp -d)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  CI_REDIS_PIDFILE="$dir/redis.pid"
  trap 'kill "$(cat "$CI_REDIS_PIDFILE" 2>/dev/null)" 2>/dev/null || true' EXIT
  export REDIS_URL="redis://127.0.0.1:$port"
  for _ in $(seq 1 50); do redis_answers "$REDIS_URL" && return; sleep 0.1; done
  echo "ci: redis-server did not start on port $port" >&2
  return 1
}
