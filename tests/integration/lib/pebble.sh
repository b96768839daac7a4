# shellcheck shell=bash
# Pebble (Debian's `pebble` 2.4, the ACME test CA) as a peer on 127.0.0.1. Source after
# common.sh and named.sh (for free_port and NAMED_PORT: Pebble resolves DNS-01 through named).
#
#   pebble_start DIR [VAR=value...]   start Pebble; VAR=value pairs go into Pebble's environment
#   pebble_stop                       stop it by PID
#   pebble_restart                    stop and start again on the same ports and config
#   pebble_count_requests             ACME requests Pebble handled since pebble_start
#
# pebble_start exports:
#   PEBBLE_PID PEBBLE_DIR PEBBLE_LOG PEBBLE_PORT PEBBLE_MGMT_PORT
#   ACME_DIRECTORY      https://127.0.0.1:PORT/dir
#   ACME_CA_BUNDLE      the test CA that signed Pebble's HTTPS certificate (trust it for ACME)
#   PEBBLE_MGMT         https://127.0.0.1:MGMT_PORT (management interface, same TLS CA)
#   PEBBLE_ROOT         DIR/pebble-root.pem, the root that issued certificates chain to
#   PEBBLE_INTERMEDIATE DIR/pebble-intermediate.pem, the intermediate that signs leaves
#
# Pebble's environment defaults (a caller overrides them by exporting the variable before
# pebble_start or by passing VAR=value):
#   PEBBLE_VA_NOSLEEP=1       no random 0-15 s sleep before each validation
#   PEBBLE_WFE_NONCEREJECT=0  Pebble's default rejects 5% of good nonces; tests of badNonce
#                             retry pass e.g. PEBBLE_WFE_NONCEREJECT=50
#   PEBBLE_AUTHZREUSE=0       Pebble's default reuses a valid authorization 50% of the time.
#                             0 makes every order need fresh authorizations, so DNS-01 is
#                             always exercised and request counts are reproducible; tests of
#                             reuse pass PEBBLE_AUTHZREUSE=100.
# Options read from the caller's shell at pebble_start:
#   PEBBLE_EAB_KID            when set, newAccount requires External Account Binding with this
#                             key id; the MAC key is PEBBLE_EAB_HMAC_KEY (base64url, no padding)
#                             or a random one, exported as PEBBLE_EAB_HMAC_KEY
#   PEBBLE_VALIDITY_SECONDS   certificateValidityPeriod of issued certificates (Pebble: 5 years)
#   PEBBLE_STRICT=1           run with -strict
#   PEBBLE_DNS_SERVER         host:port Pebble resolves through (default 127.0.0.1:$NAMED_PORT)

# Pebble 2.4 logs one line "Pebble <date> <time> <METHOD> <path> -> calling handler()" for
# every request that reaches an ACME (WFE) handler with an allowed method: GET /dir, HEAD and
# GET newNonce, every POST (newAccount, newOrder, authz, challenge, finalize, order, cert, ...).
# Not logged: requests with a method the endpoint does not allow (405), unknown paths (404),
# and the management interface (/roots, /intermediates, ...).
_PEBBLE_REQ_RE='^Pebble [0-9/]+ [0-9:]+ [A-Z]+ .* -> calling handler\(\)$'

_PEBBLE_ENV=()
_PEBBLE_OWN=0
_PEBBLE_CLEANUP=0

# _pebble_log_requests: handler lines in the whole log (all runs of this instance).
_pebble_log_requests()
{
	local n
	n=$(grep -c -E "$_PEBBLE_REQ_RE" "$PEBBLE_LOG" 2>/dev/null) || true
	printf '%s\n' "${n:-0}"
}

# _pebble_free_ports: four distinct free ports (none equal to named's) into PEBBLE_*_PORT.
_pebble_free_ports()
{
	local ports=() p tries=0
	while [ ${#ports[@]} -lt 4 ]; do
		tries=$((tries + 1))
		[ "$tries" -le 50 ] || return 1
		p=$(free_port) || return 1
		[ "$p" = "${NAMED_PORT:-}" ] && continue
		[[ " ${ports[*]} " == *" $p "* ]] && continue
		ports+=("$p")
	done
	PEBBLE_PORT=${ports[0]}
	PEBBLE_MGMT_PORT=${ports[1]}
	PEBBLE_HTTP_PORT=${ports[2]}
	PEBBLE_TLS_PORT=${ports[3]}
}

# _pebble_tls DIR: a throwaway CA and a certificate for 127.0.0.1/localhost signed by it.
# (Debian's package ships none of Pebble's test certificates.)
_pebble_tls()
{
	local d=$1
	cat >"$d/pebble-tls.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = acmera test Pebble TLS CA
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
	(
		umask 077
		openssl req -x509 -config "$d/pebble-tls.cnf" -extensions ca_ext \
			-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$d/pebble-tls-ca.key" -out "$d/pebble-tls-ca.pem" -days 7 &&
			openssl req -new -config "$d/pebble-tls.cnf" -subj /CN=localhost \
				-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-keyout "$d/pebble-tls.key" -out "$d/pebble-tls.csr" &&
			openssl x509 -req -in "$d/pebble-tls.csr" -CA "$d/pebble-tls-ca.pem" \
				-CAkey "$d/pebble-tls-ca.key" -set_serial "0x$(openssl rand -hex 8)" \
				-days 7 -extfile "$d/pebble-tls.cnf" -extensions leaf_ext \
				-out "$d/pebble-tls.pem"
	) >"$d/pebble-tls.log" 2>&1 && chmod 644 "$d/pebble-tls-ca.pem" "$d/pebble-tls.pem"
}

# _pebble_config FILE: the JSON config (keys as in /usr/share/doc/pebble/examples).
_pebble_config()
{
	local eab=false macs=''
	if [ -n "${PEBBLE_EAB_KID:-}" ]; then
		eab=true
		if [ -z "${PEBBLE_EAB_HMAC_KEY:-}" ]; then
			PEBBLE_EAB_HMAC_KEY=$(openssl rand 48 | basenc --base64url | tr -d '=\n')
		fi
		export PEBBLE_EAB_KID PEBBLE_EAB_HMAC_KEY
		macs=$(printf ',\n    "externalAccountMACKeys": { "%s": "%s" }' \
			"$PEBBLE_EAB_KID" "$PEBBLE_EAB_HMAC_KEY")
	fi
	if [ -n "${PEBBLE_VALIDITY_SECONDS:-}" ]; then
		macs+=$(printf ',\n    "certificateValidityPeriod": %d' "$PEBBLE_VALIDITY_SECONDS")
	fi
	cat >"$1" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:$PEBBLE_PORT",
    "managementListenAddress": "127.0.0.1:$PEBBLE_MGMT_PORT",
    "certificate": "$PEBBLE_DIR/pebble-tls.pem",
    "privateKey": "$PEBBLE_DIR/pebble-tls.key",
    "httpPort": $PEBBLE_HTTP_PORT,
    "tlsPort": $PEBBLE_TLS_PORT,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": $eab$macs
  }
}
EOF
	chmod 600 "$1"
}

# _pebble_curl ARGS...: curl trusting only the test TLS CA, loopback only, bounded.
_pebble_curl()
{
	curl -sS --fail --max-time 5 --noproxy '*' --cacert "$ACME_CA_BUNDLE" "$@"
}

# _pebble_launch: start the process from the existing config and wait until it serves.
_pebble_launch()
{
	local before args=(-config "$PEBBLE_DIR/pebble-config.json" -dnsserver "$_PEBBLE_DNS")
	[ "${PEBBLE_STRICT:-0}" = 1 ] && args+=(-strict)
	before=$(_pebble_log_requests)
	env PEBBLE_VA_NOSLEEP="${PEBBLE_VA_NOSLEEP:-1}" \
		PEBBLE_WFE_NONCEREJECT="${PEBBLE_WFE_NONCEREJECT:-0}" \
		PEBBLE_AUTHZREUSE="${PEBBLE_AUTHZREUSE:-0}" \
		"${_PEBBLE_ENV[@]}" pebble "${args[@]}" >>"$PEBBLE_LOG" 2>&1 &
	PEBBLE_PID=$!
	export PEBBLE_PID
	if [ "$_PEBBLE_CLEANUP" = 0 ]; then
		on_exit pebble_stop
		_PEBBLE_CLEANUP=1
	fi
	if ! _pebble_wait_ready 30; then
		show_log "$PEBBLE_LOG" 20
		return 1
	fi
	# The CA's root and intermediate are generated anew at every launch.
	if ! _pebble_curl -o "$PEBBLE_DIR/pebble-root.pem" "$PEBBLE_MGMT/roots/0" ||
		! _pebble_curl -o "$PEBBLE_DIR/pebble-intermediate.pem" \
			"$PEBBLE_MGMT/intermediates/0"; then
		note "cannot fetch Pebble's root or intermediate from $PEBBLE_MGMT"
		return 1
	fi
	# Our own readiness probes are not the caller's requests.
	_PEBBLE_OWN=$((_PEBBLE_OWN + $(_pebble_log_requests) - before))
	return 0
}

# _pebble_wait_ready SECONDS: poll the directory; give up early if Pebble exits.
_pebble_wait_ready()
{
	local deadline=$(($(now_ms) + $1 * 1000))
	until _pebble_curl -o /dev/null "$ACME_DIRECTORY" 2>/dev/null; do
		if _pid_gone "$PEBBLE_PID"; then
			note "pebble (pid $PEBBLE_PID) exited during start-up"
			stop_pid "$PEBBLE_PID"
			PEBBLE_PID=
			return 1
		fi
		if [ "$(now_ms)" -ge "$deadline" ]; then
			note "timed out after $1s waiting for Pebble's directory $ACME_DIRECTORY"
			return 1
		fi
		sleep 0.1
	done
}

# pebble_start DIR [VAR=value...]: returns 0 when Pebble serves its directory, else 1.
pebble_start()
{
	local dir=${1:?pebble_start DIR}
	shift
	local kv
	_PEBBLE_ENV=()
	for kv in "$@"; do
		if [[ ! $kv =~ ^[A-Z_][A-Z0-9_]*= ]]; then
			note "pebble_start: '$kv' is not VAR=value"
			return 1
		fi
		_PEBBLE_ENV+=("$kv")
	done
	if [ -n "${PEBBLE_DNS_SERVER:-}" ]; then
		_PEBBLE_DNS=$PEBBLE_DNS_SERVER
	elif [ -n "${NAMED_PORT:-}" ]; then
		_PEBBLE_DNS=127.0.0.1:$NAMED_PORT
	else
		note "pebble_start: start named first (NAMED_PORT) or set PEBBLE_DNS_SERVER"
		return 1
	fi
	mkdir -p "$dir" && PEBBLE_DIR=$(cd "$dir" && pwd) || return 1
	PEBBLE_LOG=$PEBBLE_DIR/pebble.log
	: >"$PEBBLE_LOG"
	_PEBBLE_OWN=0
	if ! _pebble_tls "$PEBBLE_DIR"; then
		note "cannot create Pebble's TLS certificate"
		show_log "$PEBBLE_DIR/pebble-tls.log" 20
		return 1
	fi
	if ! _pebble_free_ports; then
		note "pebble_start: no free ports"
		return 1
	fi
	ACME_DIRECTORY=https://127.0.0.1:$PEBBLE_PORT/dir
	ACME_CA_BUNDLE=$PEBBLE_DIR/pebble-tls-ca.pem
	PEBBLE_MGMT=https://127.0.0.1:$PEBBLE_MGMT_PORT
	PEBBLE_ROOT=$PEBBLE_DIR/pebble-root.pem
	PEBBLE_INTERMEDIATE=$PEBBLE_DIR/pebble-intermediate.pem
	export PEBBLE_DIR PEBBLE_LOG PEBBLE_PORT PEBBLE_MGMT_PORT ACME_DIRECTORY ACME_CA_BUNDLE
	export PEBBLE_MGMT PEBBLE_ROOT PEBBLE_INTERMEDIATE
	_pebble_config "$PEBBLE_DIR/pebble-config.json"
	_pebble_launch
}

# pebble_stop: stop Pebble by PID (no-op when not running).
pebble_stop()
{
	[ -n "${PEBBLE_PID:-}" ] || return 0
	stop_pid "$PEBBLE_PID"
	PEBBLE_PID=
}

# pebble_restart: stop Pebble and start it again on the same ports with the same config and
# environment. Pebble keeps all state in memory: accounts, orders, authorizations and nonces
# are lost, and it generates a NEW root and intermediate (PEBBLE_ROOT and
# PEBBLE_INTERMEDIATE are refreshed). A client must register its account again (its old
# account URL now gets accountDoesNotExist). The log is appended to, and
# pebble_count_requests keeps counting across the restart.
pebble_restart()
{
	pebble_stop
	printf '=== pebble_restart at %s\n' "$(date -u +%FT%TZ)" >>"$PEBBLE_LOG"
	_pebble_launch
}

# pebble_count_requests: the number of ACME requests Pebble handled (see _PEBBLE_REQ_RE for
# exactly what counts) since pebble_start, across restarts, minus pebble.sh's own probes.
pebble_count_requests()
{
	echo $(($(_pebble_log_requests) - _PEBBLE_OWN))
}
