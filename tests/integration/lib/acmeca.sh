# shellcheck shell=bash
# Start and stop `acmera ca` (the ACME CA of issue 4) on 127.0.0.1 for tests, demos and
# benchmarks. Source after common.sh and named.sh (named_start first: the CA validates
# dns-01 by asking that named).
#
# acmeca_start DIR [EXTRA...]: makes a TLS CA and the server's certificate, writes
#   DIR/ca.conf ([ca] on a free port, dir DIR/state, domains = $DNS_ZONE, resolver = named,
#   http_port = a free port, [store] DIR/ca.db, [log] level info; EXTRA lines are appended
#   to [ca] as given, e.g. "eab_required = yes" or "lifetime = 3600"), starts it and waits
#   for its directory. Then exports:
#     ACMECA_DIR ACMECA_CONF ACMECA_LOG ACMECA_PID ACMECA_PORT ACMECA_URL (base URL)
#     ACMECA_HTTP_PORT   the port it connects to for http-01
#     ACMECA_TLS_CA      the CA that signed its HTTPS certificate (trust it for ACME)
#     ACMECA_ROOT        the root its certificates chain to (acmera ca --print-root)
#     ACMECA_INTERMEDIATE the intermediate that signs them (its generated one)
#   and, so that the helpers of acmera.sh (acmera_config, verify_issued) point at it:
#     ACME_DIRECTORY=$ACMECA_URL/dir ACME_CA_BUNDLE=$ACMECA_TLS_CA ACME_ROOT=$ACMECA_ROOT
# acmeca_stop: stops it (by PID; also on exit).
# acmeca_count_requests: ACME requests it has answered so far (one log line each).
# acmeca_no_5xx LOG...: 0 when none of these CA logs shows a request answered 5xx.

_ACMECA_CLEANUP=0

acmeca_stop()
{
	[ -n "${ACMECA_PID:-}" ] && stop_pid "$ACMECA_PID"
	ACMECA_PID=
}

acmeca_count_requests()
{
	local n
	n=$(grep -c 'event=ca.request ' "$ACMECA_LOG" 2>/dev/null) || true
	echo "${n:-0}"
}

acmeca_no_5xx()
{
	local f
	for f in "$@"; do
		[ -r "$f" ] || { echo "no log $f to look in" >&2; return 1; }
	done
	! grep -E 'event=ca.request .*status=5[0-9][0-9]' "$@"
}

_acmeca_tls()
{
	local d=$1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj "/CN=acmera ca test TLS CA" -keyout "$d/tls-ca.key" -out "$d/tls-ca.pem" \
		2>/dev/null &&
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-subj "/CN=localhost" -keyout "$d/tls.key" -out "$d/tls.csr" 2>/dev/null &&
		openssl x509 -req -in "$d/tls.csr" -CA "$d/tls-ca.pem" -CAkey "$d/tls-ca.key" \
			-CAcreateserial -days 30 -out "$d/tls.pem" \
			-extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n') \
			2>/dev/null &&
		chmod 600 "$d"/*.key
}

acmeca_start()
{
	local dir=${1:?acmeca_start DIR} line i
	shift
	mkdir -p "$dir" && ACMECA_DIR=$(cd "$dir" && pwd) || return 1
	_acmeca_tls "$ACMECA_DIR" || { note "acmeca_start: cannot make the TLS certificate"; return 1; }
	ACMECA_PORT=$(free_port) && ACMECA_HTTP_PORT=$(free_port) || return 1
	ACMECA_URL=https://127.0.0.1:$ACMECA_PORT
	ACMECA_CONF=$ACMECA_DIR/ca.conf
	ACMECA_LOG=$ACMECA_DIR/ca.log
	ACMECA_TLS_CA=$ACMECA_DIR/tls-ca.pem
	{
		printf '[ca]\nlisten = 127.0.0.1:%s\nurl = %s\n' "$ACMECA_PORT" "$ACMECA_URL"
		printf 'cert = %s\nkey = %s\ndir = %s\n' "$ACMECA_DIR/tls.pem" "$ACMECA_DIR/tls.key" \
			"$ACMECA_DIR/state"
		printf 'domains = %s\nresolver = 127.0.0.1:%s\nhttp_port = %s\n' "$DNS_ZONE" \
			"$NAMED_PORT" "$ACMECA_HTTP_PORT"
		for line in "$@"; do
			printf '%s\n' "$line"
		done
		printf '\n[store]\npath = %s\n\n[log]\nlevel = info\n' "$ACMECA_DIR/ca.db"
	} >"$ACMECA_CONF"
	if ! "$ACMERA_BIN" ca --config "$ACMECA_CONF" --print-root >"$ACMECA_DIR/root.pem" \
		2>"$ACMECA_DIR/print-root.err"; then
		note "acmera ca --print-root failed"
		show_log "$ACMECA_DIR/print-root.err" 10
		return 1
	fi
	ACMECA_ROOT=$ACMECA_DIR/root.pem
	ACMECA_INTERMEDIATE=$ACMECA_DIR/state/intermediate.pem
	if [ "$_ACMECA_CLEANUP" = 0 ]; then
		on_exit acmeca_stop
		_ACMECA_CLEANUP=1
	fi
	"$ACMERA_BIN" ca --config "$ACMECA_CONF" >>"$ACMECA_LOG" 2>&1 &
	ACMECA_PID=$!
	ACME_DIRECTORY=$ACMECA_URL/dir
	ACME_CA_BUNDLE=$ACMECA_TLS_CA
	ACME_ROOT=$ACMECA_ROOT
	export ACMECA_DIR ACMECA_CONF ACMECA_LOG ACMECA_PID ACMECA_PORT ACMECA_URL ACMECA_HTTP_PORT
	export ACMECA_TLS_CA ACMECA_ROOT ACMECA_INTERMEDIATE ACME_DIRECTORY ACME_CA_BUNDLE ACME_ROOT
	for ((i = 0; i < 100; i++)); do
		curl -sf -o /dev/null --max-time 2 --noproxy '*' --cacert "$ACMECA_TLS_CA" \
			"$ACME_DIRECTORY" && return 0
		_pid_gone "$ACMECA_PID" && break
		sleep 0.1
	done
	note "acmera ca did not answer on $ACME_DIRECTORY"
	show_log "$ACMECA_LOG" 20
	return 1
}
