# shellcheck shell=bash
# `acmera serve` as the EST RA on 127.0.0.1, for tests, the demo and scripts/local-stack.
# Source after common.sh, named.sh, pebble.sh and acmera.sh; start named and Pebble first.
#
#   est_start DIR TEMPLATE [LINE...]  start the RA: profile "default" gives {user} names from
#                                     TEMPLATE (HTTP Basic), profile "iot" gives
#                                     {serialNumber}.iot.ZONE to IDevID client certificates;
#                                     each LINE is added to [est] (e.g. "wait = 0")
#   est_stop                          stop it by PID
#   est_flow_lines                    filter: the RA's log as call-flow lines (stdin->stdout)
#
# est_start exports:
#   EST_PID EST_PORT EST_URL EST_LOG EST_CONF
#   EST_CA         trust anchor for the RA's TLS (the test RA CA)
#   EST_USER EST_PASS EST_PASS_FILE   an HTTP Basic user of profile "default"
#   DEVICE_CERT DEVICE_KEY DEVICE_NAME  a sample IDevID (subject serialNumber) and the name
#                                       profile "iot" gives it
#   IDEVID_CA      the IDevID issuer (profile "iot" trusts it)

_EST_CLEANUP=0

# _est_pki DIR: the RA's TLS CA and certificate, an IDevID CA and one device.
_est_pki()
{
	local d=$1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj "/CN=acmera test RA CA" -keyout "$d/ra-ca.key" -out "$d/ra-ca.pem" 2>/dev/null &&
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-subj "/CN=localhost" -keyout "$d/ra.key" -out "$d/ra.csr" 2>/dev/null &&
		openssl x509 -req -in "$d/ra.csr" -CA "$d/ra-ca.pem" -CAkey "$d/ra-ca.key" \
			-CAcreateserial -days 30 -out "$d/ra.pem" \
			-extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,1.3.6.1.5.5.7.3.28\n') \
			2>/dev/null &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
			-subj "/CN=acmera test IDevID CA" -keyout "$d/idevid-ca.key" \
			-out "$d/idevid-ca.pem" 2>/dev/null &&
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-subj "/serialNumber=SN1234/CN=sensor" -keyout "$d/device.key" \
			-out "$d/device.csr" 2>/dev/null &&
		openssl x509 -req -in "$d/device.csr" -CA "$d/idevid-ca.pem" -CAkey "$d/idevid-ca.key" \
			-CAcreateserial -days 30 -out "$d/device.pem" 2>/dev/null &&
		chmod 600 "$d"/*.key
}

est_start()
{
	local dir=${1:?est_start DIR TEMPLATE} template=${2:?est_start DIR TEMPLATE} line i
	shift 2
	mkdir -p "$dir" && EST_DIR=$(cd "$dir" && pwd) || return 1
	_est_pki "$EST_DIR" || { note "est_start: cannot make the test PKI"; return 1; }
	EST_CA=$EST_DIR/ra-ca.pem
	IDEVID_CA=$EST_DIR/idevid-ca.pem
	DEVICE_CERT=$EST_DIR/device.pem
	DEVICE_KEY=$EST_DIR/device.key
	DEVICE_NAME=sn1234.iot.$DNS_ZONE
	EST_USER=pledge
	EST_PASS=$(openssl rand -hex 12)
	EST_PASS_FILE=$EST_DIR/pledge.password
	(umask 077 && printf '%s\n' "$EST_PASS" >"$EST_PASS_FILE")
	printf '%s\n' "$EST_PASS" | "$ACMERA_BIN" passwd --file "$EST_DIR/est.passwd" "$EST_USER" \
		>"$EST_DIR/passwd.log" 2>&1 || { note "est_start: acmera passwd failed"; show_log "$EST_DIR/passwd.log" 5; return 1; }
	# /cacerts: the chain of the CA in use (acmera ca when lib/acmeca.sh started one).
	if [ -n "${ACMECA_INTERMEDIATE:-}" ]; then
		cat "$ACMECA_ROOT" "$ACMECA_INTERMEDIATE" >"$EST_DIR/ca-chain.pem"
	else
		cat "$PEBBLE_ROOT" "$PEBBLE_INTERMEDIATE" >"$EST_DIR/ca-chain.pem"
	fi
	EST_PORT=$(free_port) || return 1
	EST_URL=https://127.0.0.1:$EST_PORT
	EST_LOG=$EST_DIR/serve.log
	EST_CONF=$EST_DIR/acmera.conf
	ACMERA_STATE=${ACMERA_STATE:-$EST_DIR/acmera.db} acmera_config "$EST_CONF" \
		"[issuer]" "lease = 10" "batch_wait = 100" \
		"[est]" "listen = 127.0.0.1:$EST_PORT" "cert = $EST_DIR/ra.pem" "key = $EST_DIR/ra.key" \
		"passwd_file = $EST_DIR/est.passwd" "client_ca = $IDEVID_CA" \
		"ca_chain = $EST_DIR/ca-chain.pem" "$@" \
		"[profile \"default\"]" "name_template = $template" "auth = basic" \
		"[profile \"iot\"]" "name_template = {serialNumber}.iot.$DNS_ZONE" \
		"trust_anchors = $IDEVID_CA" "auth = cert"
	export EST_DIR EST_CA IDEVID_CA DEVICE_CERT DEVICE_KEY DEVICE_NAME EST_USER EST_PASS
	export EST_PASS_FILE EST_PORT EST_URL EST_LOG EST_CONF
	if [ "$_EST_CLEANUP" = 0 ]; then
		on_exit est_stop
		_EST_CLEANUP=1
	fi
	"$ACMERA_BIN" serve --config "$EST_CONF" >>"$EST_LOG" 2>&1 &
	EST_PID=$!
	export EST_PID
	for ((i = 0; i < 100; i++)); do
		curl -s -o /dev/null --cacert "$EST_CA" "$EST_URL/.well-known/est/cacerts" && return 0
		_pid_gone "$EST_PID" && break
		sleep 0.1
	done
	note "acmera serve did not answer on $EST_URL"
	show_log "$EST_LOG" 20
	return 1
}

est_stop()
{
	[ -n "${EST_PID:-}" ] || return 0
	stop_pid "$EST_PID"
	EST_PID=
}

# The RA's log events as lines of the draft's call flow.
est_flow_lines()
{
	# mawk reads pipes in blocks unless told to be interactive: the demo needs lines.
	local awk=(awk)
	case "$(awk -W version 2>&1)" in *mawk*) awk=(awk -W interactive) ;; esac
	"${awk[@]}" '
	function kv(k,   m) { if (match($0, " " k "=(\"[^\"]*\"|[^ ]*)")) { m = substr($0, RSTART + length(k) + 2, RLENGTH - length(k) - 2); gsub(/"/, "", m); return m } return "" }
	/event=est.request/      { printf "  RA:     %s /%s -> %s %s\n", (kv("op") ~ /^(cacerts|csrattrs)$/ ? "GET" : "POST"), kv("op"), kv("status"), kv("name") == "-" ? "" : kv("name"); fflush(); next }
	/event=issuer.mode/      { printf "  RA:     authorization: %s\n", kv("authorization"); fflush(); next }
	/event=acme.new_authz/   { printf "  RA   -> ACME  POST /newAuthz %s\n", kv("domain"); fflush(); next }
	/event=acme.new_order/   { printf "  RA   -> ACME  POST /newOrder %s\n", kv("names"); fflush(); next }
	/event=acme.order /      { if (kv("status") != "") printf "  ACME -> RA    order %s\n", kv("status"); fflush(); next }
	/event=acme.authz/       { printf "  RA   -> ACME  POST authorization %s -> %s\n", kv("identifier") kv("domain"), kv("status"); fflush(); next }
	/event=dns.update/       { printf "  RA   -> DNS   UPDATE %s %s TXT record(s) in %s\n", kv("op"), kv("records"), kv("zone"); fflush(); next }
	/event=acme.challenge/   { printf "  RA   -> ACME  POST /challenge (dns-01 %s); ACME -> DNS verify\n", kv("record"); fflush(); next }
	/event=acme.finalize/    { printf "  RA   -> ACME  POST /finalize with the pledge CSR, unchanged\n"; fflush(); next }
	/event=acme.certificate/ { printf "  RA   -> ACME  POST /certificate (Accept: application/pkcs7-mime) -> issued\n"; fflush(); next }
	/level=error/            { print "  " $0; fflush(); next }
	'
}
