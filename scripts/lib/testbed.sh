# shellcheck shell=bash
# shellcheck disable=SC2034  # settings below are used by the scripts that source this file
# scripts/lib/testbed.sh -- shared functions for the local integration test bed.
#
# Sourced by scripts/testbed-up, scripts/testbed-down, scripts/test and scripts/demo.
# The test bed is: a real NetBox (PyPI package) served by gunicorn on 127.0.0.1, backed by the
# machine's PostgreSQL and Redis, plus fake SSH network devices (PyPI package fakenos), each
# on its own loopback address. Everything it owns lives in $STATE, outside the repository, so
# later runs (and CI clones on the same machine) reuse the venvs and the migrated schema.
#
# Knobs (environment):
#   NBT_STATE        state directory                        [/var/tmp/netbox-toolkit-testbed]
#   NB_PORT          NetBox (gunicorn) port on 127.0.0.1    [8000]
#   NB_STATIC_PORT   NetBox's static files on 127.0.0.1     [8001]
#   NB_PYTHON        Python >= 3.12 used for the NetBox venv  [auto: python3.13/3.12, pyenv]
#   NB_REDIS_PORT    Redis port on 127.0.0.1                [6379]
#   NB_REDIS_DB_TASKS / NB_REDIS_DB_CACHE                   [6 / 7]
#   NB_DB_NAME / NB_DB_USER / NB_DB_PASSWORD                [netbox_toolkit / netbox_toolkit / ...]
#   FN_PYTHON        Python >= 3.11 used for the fakenos venv [python3]
#   NBT_RESET_DB=1   drop the NetBox database first (restored from the schema cache: ~40 s)

# ------------------------------------------------------------------------------ settings
TB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TB_SCRIPTS=$(cd "$TB_LIB_DIR/.." && pwd)
TB_REPO=$(cd "$TB_SCRIPTS/.." && pwd)
TB_PY_DIR=$TB_SCRIPTS/testbed

STATE=${NBT_STATE:-/var/tmp/netbox-toolkit-testbed}
TB_ENV_FILE=$STATE/testbed.env
TB_SEED_FILE=$STATE/seed.json

NB_VERSION=4.7.3
NB_PORT=${NB_PORT:-8000}
NB_URL=http://127.0.0.1:$NB_PORT
NB_HOME=$STATE/netbox
NB_VENV=$NB_HOME/venv
NB_ROOT=$NB_HOME/root              # NETBOX_ROOT: conf/configuration.py, media/, ...
NB_STATIC=$NB_ROOT/static          # collectstatic target (NetBox fixes STATIC_ROOT to NETBOX_ROOT/static)
NB_CONF=$NB_ROOT/conf/configuration.py
NB_PIDFILE=$NB_HOME/gunicorn.pid
NB_LOG=$NB_HOME/gunicorn.log
# gunicorn serves no static files: NetBox's static URL points at a small server of our own
NB_STATIC_PORT=${NB_STATIC_PORT:-8001}
NB_STATIC_URL=http://127.0.0.1:$NB_STATIC_PORT/static/
NB_STATIC_PIDFILE=$NB_HOME/static.pid
NB_STATIC_LOG=$NB_HOME/static.log
NB_ADMIN_USER="admin"
NB_SECRETS=$NB_HOME/admin.secrets  # ADMIN_PASSWORD / TOKEN_V2 / TOKEN_V1 lines, mode 600
NB_DB_NAME=${NB_DB_NAME:-netbox_toolkit}
NB_DB_USER=${NB_DB_USER:-netbox_toolkit}
NB_DB_PASSWORD=${NB_DB_PASSWORD:-nbt-testbed-db-pw}
NB_REDIS_PORT=${NB_REDIS_PORT:-6379}
NB_REDIS_DB_TASKS=${NB_REDIS_DB_TASKS:-6}
NB_REDIS_DB_CACHE=${NB_REDIS_DB_CACHE:-7}
NB_SCHEMA_CACHE=$STATE/cache/netbox-$NB_VERSION-schema.dump

FN_VERSION=1.2.1
FN_HOME=$STATE/fakenos
FN_VENV=$FN_HOME/venv
FN_SPEC=$FN_HOME/devices.spec
FN_READY=$FN_HOME/ready
FN_PIDFILE=$FN_HOME/launcher.pid
FN_LOG=$FN_HOME/launcher.log

# schemathesis (PyPI): tests/schema.rs runs its CLI against the service's OpenAPI document
ST_VERSION=4.32.5
ST_HOME=$STATE/schemathesis
ST_VENV=$ST_HOME/venv

DEVICE_USERNAME=user
DEVICE_PASSWORD=user

# The lab. One line per NetBox device:
#   name  netbox-platform-slug  primary-IPv4|-  ssh-service-port|-  fakenos-platform|-  user  password
# A device with a fakenos platform is served by the launcher on address:port with user/password.
# ios-badpw's device expects another password than the one the service is given (DEVICE_PASSWORD).
# acme1 has a platform our service does not support, noip1 no primary IP, dead1 a port nobody
# listens on.
tb_lab() {
  cat <<'EOF'
ios1       cisco_ios      127.0.0.11  6001  cisco_ios      user  user
eos1       arista_eos     127.0.0.12  6002  arista_eos     user  user
junos1     juniper_junos  127.0.0.13  6003  juniper_junos  user  user
nxos1      cisco_nxos     127.0.0.14  6004  cisco_nxos     user  user
xr1        cisco_iosxr    127.0.0.15  6005  cisco_xr       user  user
vrp1       huawei_vrp     127.0.0.16  6006  huawei_vrp     user  user
ios-badpw  cisco_ios      127.0.0.17  6007  cisco_ios      user  other-secret
acme1      acme_os        127.0.0.20  6010  -              -     -
noip1      cisco_ios      -           -     -              -     -
dead1      cisco_ios      127.0.0.21  6099  -              -     -
EOF
}

# ------------------------------------------------------------------------------ logging
TB_T0=${TB_T0:-$(date +%s.%N)}
TB_TAG=${TB_TAG:-testbed}
tb_log() {
  printf '[%s %6ss] %s\n' "$TB_TAG" "$(awk -v a="$(date +%s.%N)" -v b="$TB_T0" 'BEGIN { printf "%.1f", a - b }')" "$*" >&2
}
tb_die() { tb_log "ERROR: $*"; exit 1; }
tb_section() { printf '\n==================== %s ====================\n' "$*" >&2; }

# ------------------------------------------------------------------------------ apt
TB_APT_UPDATED=
tb_pkg_installed() {
  # dpkg -s also succeeds for removed packages whose config files are left: ask for the status
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}
tb_apt_install() {
  local p missing=()
  for p in "$@"; do tb_pkg_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || tb_die "need root to apt-get install ${missing[*]}"
  if [ -z "$TB_APT_UPDATED" ]; then
    tb_log "apt-get update"
    apt-get update -qq >&2
    TB_APT_UPDATED=1
  fi
  tb_log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
tb_base_packages() {
  # postgresql/redis: NetBox backends; libpq-dev+gcc: pip builds psycopg's C module;
  # python3-venv: venvs from Debian's python; iproute2: ss;
  # openssh-server/-client: the transport tests run their own sshd and ssh-keygen;
  # libssl-dev+pkg-config: the libssh2 fallback transport links OpenSSL
  tb_apt_install postgresql redis-server libpq-dev gcc curl jq \
    python3 python3-venv iproute2 procps ca-certificates \
    openssh-server openssh-client libssl-dev pkg-config
}

# ------------------------------------------------------------------------------ helpers
# tb_pid_alive PIDFILE PATTERN -> prints the pid if the process lives and its command line
# contains PATTERN (guards against a recycled pid)
tb_pid_alive() {
  local pid cmd
  pid=$(cat "$1" 2>/dev/null || true)
  [ -n "$pid" ] && tb_running "$pid" || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
  [[ $cmd == *"$2"* ]] && echo "$pid"
}
# tb_running PID: alive and not a zombie (daemons are reparented to a pid 1 that may reap late)
tb_running() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}
# tb_stop_pidfile PIDFILE PATTERN WHAT [SIGNAL]
tb_stop_pidfile() {
  local pid i
  pid=$(tb_pid_alive "$1" "$2" || true)
  if [ -n "$pid" ]; then
    tb_log "stopping $3 (pid $pid)"
    kill "-${4:-TERM}" "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do tb_running "$pid" || break; sleep 0.1; done
    if tb_running "$pid"; then
      tb_log "$3 (pid $pid) still alive after 10 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$1"
}
# tb_rotate LOG: keep the previous run's log as LOG.1 (logs of daemons grow with every request)
tb_rotate() { if [ -s "$1" ]; then mv -f "$1" "$1.1"; fi; }
# tb_port_listening ADDR PORT
tb_port_listening() {
  [ -n "$(ss -Hltn "( src $1 or src 0.0.0.0 ) and sport = :$2" 2>/dev/null)" ]
}
# tb_http_code URL [curl args...]
tb_http_code() {
  local url=$1; shift
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "$url" 2>/dev/null || true
}
tb_python_ok() {  # tb_python_ok PYTHON MAJOR MINOR
  [ -n "$1" ] && "$1" -c "import sys; sys.exit(sys.version_info < ($2, $3))" >/dev/null 2>&1
}
# tb_find_python MINOR [preferred...] -> path of a python 3.MINOR+ (checks PATH, then pyenv)
tb_find_python() {
  local minor=$1 c v; shift
  for c in "$@" python3.14 python3.13 python3.12 python3; do
    [ -n "$c" ] || continue
    c=$(command -v "$c" 2>/dev/null) || continue
    tb_python_ok "$c" 3 "$minor" && { echo "$c"; return 0; }
  done
  for c in "${PYENV_ROOT:-$HOME/.pyenv}/versions"/3.*/bin/python3; do
    [ -x "$c" ] || continue
    v=$(basename "$(dirname "$(dirname "$c")")")
    echo "$v $c"
  done | sort -rV | while read -r _ c; do
    tb_python_ok "$c" 3 "$minor" && { echo "$c"; break; }
  done | grep . && return 0
  return 1
}
# tb_venv_has VENV DIST VERSION
tb_venv_has() {
  [ -x "$1/bin/python" ] &&
    "$1/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$2') != '$3')" 2>/dev/null
}
# tb_secret NAME -> value from $NB_SECRETS
tb_secret() {
  if [ -f "$NB_SECRETS" ]; then sed -n "s/^$1=//p" "$NB_SECRETS" | tail -n 1; fi
}
tb_set_secret() (
  umask 077
  tmp=$(mktemp "$NB_SECRETS.XXXX")
  { grep -v "^$1=" "$NB_SECRETS" 2>/dev/null || true; echo "$1=$2"; } >"$tmp"
  mv "$tmp" "$NB_SECRETS"
)

# ------------------------------------------------------------------------------ Rust toolchain
# cargo from rustup (Debian's cargo is too old for this crate); adds rustfmt/clippy if missing.
tb_rust_toolchain() {
  local c
  case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) [ -d "$HOME/.cargo/bin" ] && PATH=$HOME/.cargo/bin:$PATH ;; esac
  export PATH
  command -v cargo >/dev/null 2>&1 || tb_die "cargo not found: install Rust with rustup (see rust-version in Cargo.toml)"
  if command -v rustup >/dev/null 2>&1; then
    for c in rustfmt clippy; do
      if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
        tb_log "rustup component add $c"
        rustup component add "$c" >&2
      fi
    done
  fi
  cargo fmt --version >/dev/null 2>&1 || tb_die "cargo fmt is not available"
  cargo clippy --version >/dev/null 2>&1 || tb_die "cargo clippy is not available"
}

# ------------------------------------------------------------------------------ PostgreSQL
PG_PORT=
tb_postgres_up() {
  local ver cluster port status i
  read -r ver cluster port status _ < <(pg_lsclusters --no-header 2>/dev/null | head -1) || true
  if [ -z "${ver:-}" ]; then
    ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -1)
    [ -n "$ver" ] || tb_die "no PostgreSQL server installed"
    tb_log "creating PostgreSQL cluster $ver/main"
    pg_createcluster "$ver" main >&2
    read -r ver cluster port status _ < <(pg_lsclusters --no-header | head -1)
  fi
  [ "$ver" -ge 14 ] || tb_die "PostgreSQL $ver is too old: NetBox needs 14 or newer"
  PG_PORT=$port
  if [ "$status" != online ]; then
    tb_log "starting PostgreSQL $ver/$cluster (port $port)"
    pg_ctlcluster "$ver" "$cluster" start >&2
  fi
  for i in $(seq 1 60); do
    tb_psql_admin -c 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  tb_die "PostgreSQL $ver/$cluster does not answer"
}
tb_psql_admin() { runuser -u postgres -- psql -p "$PG_PORT" -X -v ON_ERROR_STOP=1 -qtA "$@"; }
tb_psql_nb() {
  PGPASSWORD=$NB_DB_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$NB_DB_USER" -d "$NB_DB_NAME" \
    -X -v ON_ERROR_STOP=1 -qtA "$@"
}
tb_netbox_database() {
  if [ "${NBT_RESET_DB:-0}" = 1 ]; then
    tb_netbox_stop
    tb_log "NBT_RESET_DB=1: dropping database $NB_DB_NAME"
    rm -f "$NB_HOME/schema.ok"
    tb_psql_admin -c "DROP DATABASE IF EXISTS \"$NB_DB_NAME\" WITH (FORCE)"
  fi
  if [ "$(tb_psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$NB_DB_USER'")" != 1 ]; then
    tb_log "creating PostgreSQL role $NB_DB_USER"
    tb_psql_admin -c "CREATE ROLE \"$NB_DB_USER\" LOGIN PASSWORD '$NB_DB_PASSWORD'"
  fi
  if [ "$(tb_psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$NB_DB_NAME'")" != 1 ]; then
    tb_log "creating database $NB_DB_NAME"
    tb_psql_admin -c "CREATE DATABASE \"$NB_DB_NAME\" OWNER \"$NB_DB_USER\" ENCODING 'UTF8' TEMPLATE template0"
  fi
}

# ------------------------------------------------------------------------------ Redis
tb_redis_up() {
  local i
  [ "$(redis-cli -h 127.0.0.1 -p "$NB_REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
  mkdir -p "$STATE/redis"
  tb_log "starting redis-server on 127.0.0.1:$NB_REDIS_PORT (no persistence)"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$NB_REDIS_PORT" --save '' --appendonly no \
    --dir "$STATE/redis" --pidfile "$STATE/redis/redis.pid" --logfile "$STATE/redis/redis.log" >&2
  for i in $(seq 1 50); do
    [ "$(redis-cli -h 127.0.0.1 -p "$NB_REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.1
  done
  tb_die "redis does not answer on 127.0.0.1:$NB_REDIS_PORT"
}

# ------------------------------------------------------------------------------ NetBox install
tb_netbox_install() {
  local py t
  tb_venv_has "$NB_VENV" netbox "$NB_VERSION" && return 0
  # NetBox 4.7 declares Requires-Python >= 3.12: with Debian 12's 3.11 pip finds no version at all
  py=$(tb_find_python 12 "${NB_PYTHON:-}") ||
    tb_die "NetBox $NB_VERSION needs Python >= 3.12 (Debian 12 ships 3.11): install one (e.g. pyenv) or set NB_PYTHON"
  mkdir -p "$NB_HOME"
  if [ ! -x "$NB_VENV/bin/python" ] || ! tb_python_ok "$NB_VENV/bin/python" 3 12; then
    rm -rf "$NB_VENV"
    tb_log "creating NetBox venv with $py ($("$py" --version 2>&1))"
    "$py" -m venv "$NB_VENV"
  fi
  t=$(date +%s)
  tb_log "pip install netbox==$NB_VERSION (1-2 min: compiles psycopg's C extension)"
  "$NB_VENV/bin/pip" install -q --disable-pip-version-check "netbox==$NB_VERSION" >&2
  tb_log "pip install netbox done in $(( $(date +%s) - t )) s"
}

tb_netbox_config() {
  [ -s "$NB_CONF" ] && return 0
  tb_log "writing $NB_CONF"
  mkdir -p "$NB_ROOT/conf" "$NB_ROOT/media" "$NB_ROOT/reports" "$NB_ROOT/scripts" "$NB_STATIC"
  : >"$NB_ROOT/conf/__init__.py"
  NB_DB_NAME=$NB_DB_NAME NB_DB_USER=$NB_DB_USER NB_DB_PASSWORD=$NB_DB_PASSWORD PG_PORT=$PG_PORT \
    NB_REDIS_PORT=$NB_REDIS_PORT NB_REDIS_DB_TASKS=$NB_REDIS_DB_TASKS NB_REDIS_DB_CACHE=$NB_REDIS_DB_CACHE \
    NB_STATIC=$NB_STATIC NB_ROOT=$NB_ROOT \
    "$NB_VENV/bin/python" - "$NB_CONF" <<'PY'
import os, secrets, sys
env = os.environ
def redis(db):
    return {"HOST": "127.0.0.1", "PORT": int(env["NB_REDIS_PORT"]), "USERNAME": "", "PASSWORD": "",
            "DATABASE": int(db), "SSL": False}
text = f"""# NetBox configuration of the netbox-toolkit test bed (scripts/lib/testbed.sh).
# Local testing only: random secrets, every host allowed, no TLS.
ALLOWED_HOSTS = ["*"]
DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.postgresql",
        "NAME": {env["NB_DB_NAME"]!r},
        "USER": {env["NB_DB_USER"]!r},
        "PASSWORD": {env["NB_DB_PASSWORD"]!r},
        "HOST": "127.0.0.1",
        "PORT": {env["PG_PORT"]!r},
        "CONN_MAX_AGE": 300,
    }}
}}
REDIS = {{
    "tasks": {redis(env["NB_REDIS_DB_TASKS"])!r},
    "caching": {redis(env["NB_REDIS_DB_CACHE"])!r},
}}
SECRET_KEY = {secrets.token_urlsafe(60)!r}
# v2 tokens ("Bearer nbt_<key>.<secret>") are HMACed with a pepper of at least 50 characters.
API_TOKEN_PEPPERS = {{1: {secrets.token_urlsafe(60)!r}}}
DEBUG = False
TIME_ZONE = "UTC"
CENSUS_REPORTING_ENABLED = False
RELEASE_CHECK_URL = None
MEDIA_ROOT = {env["NB_ROOT"] + "/media"!r}
"""
with open(sys.argv[1], "w", encoding="utf-8") as fh:
    fh.write(text)
PY
}

# netbox CLI with our config
tb_netbox() { NETBOX_ROOT=$NB_ROOT "$NB_VENV/bin/netbox" "$@"; }

tb_netbox_schema() {
  local tables t fresh=0 stamp=$NB_HOME/schema.ok
  tables=$(tb_psql_nb -c "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
  # `netbox migrate --check` costs ~15 s; skip it when this database was migrated for this
  # NetBox version before (the stamp is dropped with the database).
  if [ "$tables" != 0 ] && [ "$(cat "$stamp" 2>/dev/null || true)" = "$NB_VERSION $NB_DB_NAME $PG_PORT" ]; then
    tb_log "schema of $NB_DB_NAME already migrated for NetBox $NB_VERSION"
    return 0
  fi
  rm -f "$stamp"
  if [ "$tables" = 0 ]; then
    fresh=1
    if [ -s "$NB_SCHEMA_CACHE" ]; then
      t=$(date +%s)
      tb_log "empty database: restoring the migrated schema from $NB_SCHEMA_CACHE"
      PGPASSWORD=$NB_DB_PASSWORD pg_restore -h 127.0.0.1 -p "$PG_PORT" -U "$NB_DB_USER" -d "$NB_DB_NAME" \
        --no-owner --no-acl --exit-on-error "$NB_SCHEMA_CACHE" >&2
      tb_log "restore done in $(( $(date +%s) - t )) s"
      fresh=0
    fi
  fi
  t=$(date +%s)
  if tb_netbox migrate --check >/dev/null 2>&1; then
    tb_log "schema up to date (migrate --check: $(( $(date +%s) - t )) s)"
    echo "$NB_VERSION $NB_DB_NAME $PG_PORT" >"$stamp"
    return 0
  fi
  tb_log "running migrations, log $NB_HOME/migrate.log (an empty database takes ~8 min on 2 cores)"
  if ! tb_netbox migrate --no-input >"$NB_HOME/migrate.log" 2>&1; then
    tail -30 "$NB_HOME/migrate.log" >&2
    tb_die "netbox migrate failed"
  fi
  tb_log "migrations done in $(( $(date +%s) - t )) s"
  if [ "$fresh" = 1 ]; then
    mkdir -p "$(dirname "$NB_SCHEMA_CACHE")"
    tb_log "saving the migrated schema to $NB_SCHEMA_CACHE"
    PGPASSWORD=$NB_DB_PASSWORD pg_dump -h 127.0.0.1 -p "$PG_PORT" -U "$NB_DB_USER" -d "$NB_DB_NAME" \
      -Fc -f "$NB_SCHEMA_CACHE.tmp"
    mv "$NB_SCHEMA_CACHE.tmp" "$NB_SCHEMA_CACHE"
  fi
  echo "$NB_VERSION $NB_DB_NAME $PG_PORT" >"$stamp"
}

tb_netbox_collectstatic() {
  local stamp=$NB_STATIC/.collected-$NB_VERSION
  [ -f "$stamp" ] && return 0
  tb_log "netbox collectstatic into $NB_STATIC"
  tb_netbox collectstatic --no-input >"$NB_HOME/collectstatic.log" 2>&1 ||
    { tail -20 "$NB_HOME/collectstatic.log" >&2; tb_die "collectstatic failed"; }
  touch "$stamp"
}

# NetBox renders static URLs with its staticfiles storage; its base_url sends browsers to our
# static server. Appended (not in the template above) so existing test beds get it too.
# Prints "changed" when the file was edited (gunicorn must then restart to read it).
tb_netbox_static_config() {
  local marker="# nbt: static files at $NB_STATIC_URL"
  grep -qxF "$marker" "$NB_CONF" && return 0
  tb_log "pointing NetBox's static URL at $NB_STATIC_URL ($NB_CONF)"
  sed -i '/^# nbt: static files at /,/^STORAGES = /d' "$NB_CONF"
  printf '%s\nSTORAGES = {"staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage", "OPTIONS": {"base_url": "%s"}}}\n' \
    "$marker" "$NB_STATIC_URL" >>"$NB_CONF"
  echo changed
}
tb_netbox_static_pid() { tb_pid_alive "$NB_STATIC_PIDFILE" static_server.py; }
tb_netbox_static_up() {
  local i
  [ -n "$(tb_netbox_static_pid || true)" ] && return 0
  tb_port_listening 127.0.0.1 "$NB_STATIC_PORT" && tb_die "127.0.0.1:$NB_STATIC_PORT is already used by another process (set NB_STATIC_PORT)"
  tb_log "serving NetBox's static files at $NB_STATIC_URL"
  tb_rotate "$NB_STATIC_LOG"
  setsid "$NB_VENV/bin/python" "$TB_PY_DIR/static_server.py" "$NB_STATIC" 127.0.0.1 "$NB_STATIC_PORT" \
    </dev/null >>"$NB_STATIC_LOG" 2>&1 8>&- &
  echo $! >"$NB_STATIC_PIDFILE"
  for i in $(seq 1 50); do
    [ "$(tb_http_code "${NB_STATIC_URL}netbox.css")" = 200 ] && return 0
    sleep 0.1
  done
  tail -5 "$NB_STATIC_LOG" >&2
  tb_die "the static file server does not answer ${NB_STATIC_URL}netbox.css"
}
tb_netbox_static_stop() { tb_stop_pidfile "$NB_STATIC_PIDFILE" static_server.py "NetBox static files"; }

# ------------------------------------------------------------------------------ NetBox admin + tokens
tb_token_works() {  # tb_token_works "Bearer nbt_..." | "Token ..."
  [ "$(tb_http_code "$NB_URL/api/authentication-check/" -H "Authorization: $1" -H 'Accept: application/json')" = 200 ]
}
# Ensure the superuser and both tokens exist in the database (netbox shell, ~5 s). Reuses the
# stored password/tokens when they are still valid.
tb_netbox_admin() {
  local pw
  pw=$(tb_secret ADMIN_PASSWORD)
  if [ -z "$pw" ]; then
    pw=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
    pw="Nbt-${pw}-1"
    tb_set_secret ADMIN_PASSWORD "$pw"
  fi
  tb_log "ensuring superuser $NB_ADMIN_USER and its v1/v2 API tokens (netbox shell)"
  NBT_ADMIN_USER=$NB_ADMIN_USER NBT_ADMIN_PASSWORD=$pw NBT_SECRETS=$NB_SECRETS \
    tb_netbox shell --no-imports -c "$(cat "$TB_PY_DIR/netbox_admin.py")" >&2 ||
    tb_die "admin/token setup failed"
}

# ------------------------------------------------------------------------------ gunicorn
tb_netbox_pid() { tb_pid_alive "$NB_PIDFILE" gunicorn; }
tb_tokens_work() {
  local v2 v1
  v2=$(tb_secret TOKEN_V2); v1=$(tb_secret TOKEN_V1)
  [ -n "$v2" ] && [ -n "$v1" ] && tb_token_works "Bearer $v2" && tb_token_works "Token $v1"
}
# Start gunicorn (unless ours runs) and wait until NetBox serves pages (its login page needs
# no token, so this works before the admin tokens exist).
tb_netbox_start() {
  local i code
  if [ -z "$(tb_netbox_pid || true)" ]; then
    tb_port_listening 127.0.0.1 "$NB_PORT" && tb_die "127.0.0.1:$NB_PORT is already used by another process (set NB_PORT)"
    tb_log "starting gunicorn on $NB_URL (2 workers, --preload), log $NB_LOG"
    rm -f "$NB_PIDFILE"
    tb_rotate "$NB_LOG"
    # --no-control-socket: gunicorn 26 would otherwise create ~/.gunicorn/gunicorn.ctl
    NETBOX_ROOT=$NB_ROOT "$NB_VENV/bin/gunicorn" netbox.wsgi \
      --bind "127.0.0.1:$NB_PORT" --workers 2 --threads 3 --timeout 120 --preload \
      --no-control-socket --daemon --pid "$NB_PIDFILE" --chdir "$NB_ROOT" \
      --error-logfile "$NB_LOG" --access-logfile "$NB_LOG" --capture-output </dev/null >>"$NB_HOME/gunicorn.out" 2>&1 8>&- ||
      { tail -30 "$NB_HOME/gunicorn.out" >&2; tb_die "gunicorn did not start"; }
  fi
  for i in $(seq 1 240); do
    code=$(tb_http_code "$NB_URL/login/")
    [ "$code" = 200 ] && { tb_log "NetBox serves $NB_URL (gunicorn pid $(tb_netbox_pid))"; return 0; }
    # gunicorn --preload writes its pid file only once NetBox is imported (>10 s on a busy machine)
    if [ "$i" -gt 90 ] && [ -z "$(tb_netbox_pid || true)" ]; then break; fi
    sleep 0.5
  done
  tail -30 "$NB_LOG" >&2
  tb_die "NetBox does not answer $NB_URL/login/ with 200 (last: $code)"
}
# gunicorn: SIGQUIT is its quick shutdown (SIGTERM waits up to 30 s for requests to finish)
tb_netbox_stop() { tb_stop_pidfile "$NB_PIDFILE" gunicorn "NetBox gunicorn" QUIT; }

# The whole NetBox part. Fast when gunicorn runs and both stored tokens still work.
tb_netbox_up() {
  local code
  if [ -n "$(tb_netbox_pid || true)" ] && [ "${NBT_RESET_DB:-0}" != 1 ] &&
     [ -f "$NB_STATIC/.collected-$NB_VERSION" ] && [ -n "$(tb_netbox_static_pid || true)" ] &&
     grep -qxF "# nbt: static files at $NB_STATIC_URL" "$NB_CONF" && tb_tokens_work; then
    tb_log "NetBox already up on $NB_URL with valid tokens"
    return 0
  fi
  tb_base_packages
  tb_postgres_up
  tb_redis_up
  tb_netbox_install
  tb_netbox_database
  tb_netbox_config
  if [ "$(tb_netbox_static_config)" = changed ]; then tb_netbox_stop; fi
  tb_netbox_schema
  tb_netbox_collectstatic
  tb_netbox_static_up
  tb_netbox_start
  tb_tokens_work || tb_netbox_admin
  code=$(tb_http_code "$NB_URL/api/status/" -H "Authorization: Bearer $(tb_secret TOKEN_V2)" -H 'Accept: application/json')
  [ "$code" = 200 ] || tb_die "GET $NB_URL/api/status/ with the admin token: HTTP $code"
  tb_tokens_work || tb_die "the stored admin tokens do not work"
  tb_log "NetBox $NB_VERSION ready on $NB_URL"
}

# ------------------------------------------------------------------------------ fake devices
tb_fakenos_install() {
  local py t
  tb_venv_has "$FN_VENV" fakenos "$FN_VERSION" && return 0
  py=$(tb_find_python 11 "${FN_PYTHON:-}") || tb_die "fakenos needs Python >= 3.11"
  mkdir -p "$FN_HOME"
  [ -x "$FN_VENV/bin/python" ] || { tb_log "creating fakenos venv with $py"; "$py" -m venv "$FN_VENV"; }
  t=$(date +%s)
  tb_log "pip install fakenos==$FN_VERSION"
  "$FN_VENV/bin/pip" install -q --disable-pip-version-check "fakenos==$FN_VERSION" >&2
  tb_log "pip install fakenos done in $(( $(date +%s) - t )) s"
}
tb_fakenos_pid() { tb_pid_alive "$FN_PIDFILE" fakenos_launch; }
tb_fakenos_stop() { tb_stop_pidfile "$FN_PIDFILE" fakenos_launch "fake devices"; rm -f "$FN_READY"; }
tb_fakenos_up() {
  local pid i name addr port busy=()
  mkdir -p "$FN_HOME"
  # launcher spec: name address port fakenos-platform username password
  tb_lab | awk '$5 != "-" {print $1, $3, $4, $5, $6, $7}' >"$FN_SPEC.new"
  pid=$(tb_fakenos_pid || true)
  if [ -n "$pid" ] && [ -f "$FN_READY" ] && cmp -s "$FN_SPEC" "$FN_SPEC.new"; then
    rm -f "$FN_SPEC.new"
    tb_log "fake devices already running (pid $pid)"
    return 0
  fi
  tb_fakenos_install
  [ -n "$pid" ] && tb_fakenos_stop
  # fakenos binds with SO_REUSEPORT: a stray second server on the same address:port would
  # start without error and steal half of the connections, so refuse busy ports up front
  while read -r name addr port _; do
    tb_port_listening "$addr" "$port" && busy+=("$name=$addr:$port")
  done <"$FN_SPEC.new"
  [ ${#busy[@]} -eq 0 ] || { rm -f "$FN_SPEC.new"; tb_die "already listening: ${busy[*]}"; }
  mv "$FN_SPEC.new" "$FN_SPEC"
  rm -f "$FN_READY"
  tb_log "starting $(wc -l <"$FN_SPEC") fake devices, log $FN_LOG"
  tb_rotate "$FN_LOG"
  setsid "$FN_VENV/bin/python" "$TB_PY_DIR/fakenos_launch.py" "$FN_SPEC" "$FN_READY" \
    </dev/null >>"$FN_LOG" 2>&1 8>&- &
  echo $! >"$FN_PIDFILE"
  pid=$!
  for i in $(seq 1 300); do
    [ -f "$FN_READY" ] && { tb_log "fake devices ready (pid $pid)"; return 0; }
    tb_running "$pid" || break
    sleep 0.1
  done
  tail -20 "$FN_LOG" >&2
  tb_die "fake devices did not come up"
}

# ------------------------------------------------------------------------------ schemathesis
tb_schemathesis_install() {
  local py t
  tb_venv_has "$ST_VENV" schemathesis "$ST_VERSION" && return 0
  py=$(tb_find_python 10) || tb_die "schemathesis needs Python >= 3.10"
  mkdir -p "$ST_HOME"
  [ -x "$ST_VENV/bin/python" ] || { tb_log "creating schemathesis venv with $py"; "$py" -m venv "$ST_VENV"; }
  t=$(date +%s)
  tb_log "pip install schemathesis==$ST_VERSION"
  "$ST_VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$ST_VERSION" >&2
  tb_log "pip install schemathesis done in $(( $(date +%s) - t )) s"
}

# ------------------------------------------------------------------------------ seed + env file
tb_seed() {
  tb_lab >"$STATE/lab.txt"
  NETBOX_URL=$NB_URL NETBOX_TOKEN=$(tb_secret TOKEN_V2) \
    "$NB_VENV/bin/python" "$TB_PY_DIR/seed.py" "$STATE/lab.txt" "$TB_SEED_FILE" ||
    tb_die "seeding NetBox failed"
}
tb_write_env() {
  local tmp
  tmp=$(mktemp "$TB_ENV_FILE.XXXX")   # mode 600: it holds the admin password and tokens
  cat >"$tmp" <<EOF
NBT_STATE=$STATE
NETBOX_URL=$NB_URL
NETBOX_STATIC_URL=$NB_STATIC_URL
NETBOX_TOKEN=$(tb_secret TOKEN_V2)
NETBOX_TOKEN_V1=$(tb_secret TOKEN_V1)
NETBOX_ADMIN_USER=$NB_ADMIN_USER
NETBOX_ADMIN_PASSWORD=$(tb_secret ADMIN_PASSWORD)
NETBOX_VERSION=$NB_VERSION
DEVICE_USERNAME=$DEVICE_USERNAME
DEVICE_PASSWORD=$DEVICE_PASSWORD
NBT_SEED_FILE=$TB_SEED_FILE
SCHEMATHESIS=$ST_VENV/bin/st
EOF
  mv "$tmp" "$TB_ENV_FILE"
}

tb_up() {
  mkdir -p "$STATE"
  # one testbed-up at a time per state directory (a test run and a developer may race)
  exec 8>"$STATE/.lock"
  if ! flock -n 8; then
    tb_log "another testbed-up holds $STATE/.lock: waiting"
    flock 8
  fi
  tb_netbox_up
  tb_fakenos_up
  tb_schemathesis_install
  tb_seed
  tb_write_env
}
tb_down() {
  tb_netbox_stop
  tb_netbox_static_stop
  tb_fakenos_stop
}
