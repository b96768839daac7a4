#!/usr/bin/env bash
# acmera enroll (the EST client) against real peers: acmera serve as the EST RA, issuing
# through Pebble (ACME CA) with DNS-01 records in BIND 9 named. The RA answers 202 at first
# ("wait = 0"), so every enrollment goes through Retry-After. Profile "cb" requires the
# TLS channel binding in the CSR (RFC 7030 3.5), checked by the RA on every POST.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/named.sh"
. "$(dirname "$0")/lib/pebble.sh"
. "$(dirname "$0")/lib/acmera.sh"
. "$(dirname "$0")/lib/est.sh"

need openssl curl named pebble python3

ZONE=enroll.test
named_start "$TEST_TMP/named" "$ZONE" || bail "named starts"
on_exit named_stop
pebble_start "$TEST_TMP/pebble" || bail "pebble starts"
on_exit pebble_stop
est_start "$TEST_TMP/est" "{user}.$ZONE" "wait = 0" "retry_after = 1" \
	'[profile "cb"]' "name_template = {user}.cb.$ZONE" "auth = basic,cert" "channel_binding = yes" ||
	bail "acmera serve starts"

OUT=$TEST_TMP/out
mkdir -p "$OUT"
NAME=$EST_USER.$ZONE

# enroll ARGS...: acmera enroll with stdout in $OUT/stdout and stderr in $OUT/stderr.
# ACMERA_ENROLL_BIN may name another build of the client (e.g. a sanitizer build).
ENROLL_BIN=${ACMERA_ENROLL_BIN:-$ACMERA_BIN}
enroll()
{
	"$ENROLL_BIN" enroll --server "$EST_URL" "$@" >"$OUT/stdout" 2>"$OUT/stderr" </dev/null
}

# has FILE PATTERN DESC: ok when FILE has a line matching the extended regex PATTERN.
has()
{
	if grep -Eq -- "$2" "$1"; then
		ok "$3"
	else
		fail "$3" "no line matching '$2' in $1:" "$(cat "$1")"
	fi
}

pubkey_of_cert() { openssl x509 -in "$1" -noout -pubkey 2>/dev/null; }
pubkey_of_key() { openssl pkey -in "$1" -pubout 2>/dev/null; }
mode_of() { stat -c %a "$1"; }
san_of() { openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | sed -n 's/^ *DNS://p'; }

verify_chain()
{
	openssl verify -CAfile "$PEBBLE_ROOT" -untrusted "$2" "$1" >/dev/null 2>&1
}

# --- first enrollment: HTTP Basic, explicit trust anchor, 202 then 200 ---
if check "enroll: Basic user gets a certificate through 202 + Retry-After" \
	enroll --ca "$EST_CA" --user "$EST_USER" --password-file "$EST_PASS_FILE" \
	--out-key "$OUT/dev.key" --out-cert "$OUT/dev.pem" --out-chain "$OUT/dev-chain.pem"; then
	cp "$OUT/stdout" "$OUT/first.stdout"
	has "$OUT/stdout" "^GET /csrattrs -> 200: name $NAME, key p256$" \
		"enroll: /csrattrs template names the device and the key type"
	has "$OUT/stdout" "^POST /simpleenroll -> 202, Retry-After 1$" \
		"enroll: the 202 and its Retry-After are shown"
	has "$OUT/stdout" "^POST /simpleenroll -> 200: certificate for $NAME, notAfter [0-9]{4}-" \
		"enroll: the 200 names the certificate"
	# The key is on disk before the request leaves.
	key_line=$(grep -n '^wrote .*dev.key' "$OUT/stdout" | cut -d: -f1)
	post_line=$(grep -n '^POST /simpleenroll' "$OUT/stdout" | head -n 1 | cut -d: -f1)
	if [ -n "$key_line" ] && [ -n "$post_line" ] && [ "$key_line" -lt "$post_line" ]; then
		ok "enroll: the key is written before the first POST"
	else
		fail "enroll: the key is written before the first POST" "$(cat "$OUT/stdout")"
	fi
	[ "$(mode_of "$OUT/dev.key")" = 600 ] && head -n 1 "$OUT/dev.key" | grep -q 'BEGIN PRIVATE KEY' &&
		ok "enroll: the key is PKCS#8 PEM of mode 0600" ||
		fail "enroll: the key is PKCS#8 PEM of mode 0600" "mode $(mode_of "$OUT/dev.key")"
	[ "$(pubkey_of_cert "$OUT/dev.pem")" = "$(pubkey_of_key "$OUT/dev.key")" ] &&
		ok "enroll: the certificate is for the key written" ||
		fail "enroll: the certificate is for the key written"
	[ "$(san_of "$OUT/dev.pem")" = "$NAME" ] &&
		ok "enroll: the certificate names exactly $NAME" ||
		fail "enroll: the certificate names exactly $NAME" "SAN: $(san_of "$OUT/dev.pem")"
	check "enroll: the chain (leaf first) verifies to Pebble's root" \
		verify_chain "$OUT/dev.pem" "$OUT/dev-chain.pem"
	cmp -s <(awk '/BEGIN CERT/{n++} n==1' "$OUT/dev-chain.pem") "$OUT/dev.pem" &&
		ok "enroll: the chain file starts with the leaf" ||
		fail "enroll: the chain file starts with the leaf"
	# Every retry sent the same CSR: the RA opened one job and the retries joined it.
	created=$(grep 'event=job.submitted' "$EST_LOG" | grep "names=$NAME " | grep -c 'joined=no')
	joined=$(grep 'event=job.submitted' "$EST_LOG" | grep "names=$NAME " | grep -c 'joined=yes')
	if [ "$created" = 1 ] && [ "$joined" -ge 1 ]; then
		ok "enroll: retries send the same CSR and join the RA's one job ($joined joined)"
	else
		fail "enroll: retries send the same CSR and join the RA's one job" \
			"created $created, joined $joined" "$(grep 'event=job.submitted' "$EST_LOG")"
	fi
fi

# --- channel binding (RFC 7030 3.5): label "cb" requires it in the CSR ---
CB_NAME=$EST_USER.cb.$ZONE
# cb_enrolled TAG TYPE OP: the checks of an enrollment on label cb whose CSR carried TYPE.
cb_enrolled()
{
	local tag=$1 type=$2 op=$3
	has "$OUT/stdout" "^CSR carries the TLS channel binding \($type\)$" \
		"binding $tag: the CSR carries $type"
	# The RA checks the binding on every POST: the retry passed it on the same connection.
	has "$OUT/stdout" "^POST /$op -> 202, Retry-After 1$" "binding $tag: the RA answered 202 first"
	has "$OUT/stdout" "^POST /$op -> 200: certificate for $CB_NAME" \
		"binding $tag: the retry on the same connection gets the certificate"
	! grep -q 'new TLS connection' "$OUT/stdout" &&
		ok "binding $tag: every POST went over the connection the CSR is bound to" ||
		fail "binding $tag: every POST went over the connection the CSR is bound to" \
			"$(cat "$OUT/stdout")"
}
if check "binding: TLS 1.3 enrollment with --channel-binding succeeds" \
	enroll --ca "$EST_CA" --label cb --channel-binding --user "$EST_USER" \
	--password-file "$EST_PASS_FILE" --out-key "$OUT/cb13.key" --out-cert "$OUT/cb13.pem"; then
	cb_enrolled "TLS 1.3" tls-exporter simpleenroll
	[ "$(san_of "$OUT/cb13.pem")" = "$CB_NAME" ] &&
		[ "$(pubkey_of_cert "$OUT/cb13.pem")" = "$(pubkey_of_key "$OUT/cb13.key")" ] &&
		ok "binding TLS 1.3: the certificate names $CB_NAME for the key written" ||
		fail "binding TLS 1.3: the certificate names $CB_NAME" "SAN: $(san_of "$OUT/cb13.pem")"
fi
if check "binding: TLS 1.2 enrollment (--tls-max 1.2) with --channel-binding succeeds" \
	enroll --ca "$EST_CA" --label cb --channel-binding --tls-max 1.2 --user "$EST_USER" \
	--password-file "$EST_PASS_FILE" --out-key "$OUT/cb12.key" --out-cert "$OUT/cb12.pem"; then
	cb_enrolled "TLS 1.2" tls-unique simpleenroll
	[ "$(pubkey_of_cert "$OUT/cb12.pem")" = "$(pubkey_of_key "$OUT/cb12.key")" ] &&
		ok "binding TLS 1.2: the certificate is for the key written" ||
		fail "binding TLS 1.2: the certificate is for the key written"
fi
# Without --channel-binding: the RA's /csrattrs lists challengePassword, so the client binds
# the CSR by itself.
if check "binding: without --channel-binding, csrattrs makes the client bind the CSR" \
	enroll --ca "$EST_CA" --label cb --user "$EST_USER" --password-file "$EST_PASS_FILE" \
	--out-key "$OUT/auto.key" --out-cert "$OUT/auto.pem"; then
	has "$OUT/stdout" "^the RA asks for the TLS channel binding in the CSR$" \
		"binding auto: the client says the RA asked for it"
	cb_enrolled "auto" tls-exporter simpleenroll
fi
# Re-enrollment reads no csrattrs: without --channel-binding its CSR is unbound, and the RA
# checks the binding on /simplereenroll too.
if [ -s "$OUT/cb13.pem" ]; then
	enroll --ca "$EST_CA" --label cb --reenroll --cert "$OUT/cb13.pem" --key "$OUT/cb13.key" \
		--out-key "$OUT/nocb.key" --out-cert "$OUT/nocb.pem"
	rc=$?
	[ "$rc" = 1 ] && [ ! -e "$OUT/nocb.pem" ] &&
		grep -q '^acmera enroll: POST /simplereenroll -> 403: the CSR has no challengePassword' "$OUT/stderr" &&
		ok "binding: re-enrollment without --channel-binding gets 403 with the RA's reason" ||
		fail "binding: re-enrollment without --channel-binding gets 403 with the RA's reason" \
			"exit $rc" "$(cat "$OUT/stderr")"
else
	fail "binding: re-enrollment without --channel-binding" "no TLS 1.3 certificate to renew"
fi
for v in 1.2 1.3; do
	if [ -s "$OUT/cb13.pem" ] && check "binding: re-enrollment over TLS $v with --channel-binding succeeds" \
		enroll --ca "$EST_CA" --label cb --reenroll --channel-binding --tls-max "$v" \
		--cert "$OUT/cb13.pem" --key "$OUT/cb13.key" --out-key "$OUT/cbre$v.key" \
		--out-cert "$OUT/cbre$v.pem"; then
		has "$OUT/stdout" "^GET /cacerts -> 200 \(the connection the CSR is bound to\)$" \
			"binding reenroll TLS $v: GET /cacerts opens the connection first"
		type=tls-exporter
		[ "$v" = 1.2 ] && type=tls-unique
		cb_enrolled "reenroll TLS $v" "$type" simplereenroll
		[ "$(pubkey_of_cert "$OUT/cbre$v.pem")" = "$(pubkey_of_key "$OUT/cbre$v.key")" ] &&
			[ "$(san_of "$OUT/cbre$v.pem")" = "$CB_NAME" ] &&
			ok "binding reenroll TLS $v: new key, same name" ||
			fail "binding reenroll TLS $v: new key, same name"
	fi
done

# A connection the RA loses: a TCP relay to the RA that, on its first connection only,
# closes both sides when the client's Nth POST arrives (not forwarded). A POST is told by
# its size: a TLS application-data record of 400 bytes or more (headers and CSR go in one
# record; a GET, Finished or empty client Certificate is smaller).
CUTTER=$TEST_TMP/cutter.py
cat >"$CUTTER" <<'EOF'
import socket, sys, threading
port_file, target, cut_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(16)
with open(port_file, "w") as f:
    f.write("%d\n" % srv.getsockname()[1])

def close(*socks):
    for x in socks:
        try:
            x.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        x.close()

def plain(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    close(a, b)

def counting(c, s):
    buf, n = b"", 0
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            buf += d
            out = b""
            while len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[3:5], "big"):
                end = 5 + int.from_bytes(buf[3:5], "big")
                if buf[0] == 23 and end - 5 >= 400:
                    n += 1
                    if n == cut_at:
                        s.sendall(out)
                        print("cut at POST %d" % n, flush=True)
                        close(c, s)
                        return
                out, buf = out + buf[:end], buf[end:]
            s.sendall(out)
    except OSError:
        pass
    close(c, s)

first = True
while True:
    c, _ = srv.accept()
    s = socket.create_connection(("127.0.0.1", target))
    print("connection", flush=True)
    threading.Thread(target=plain, args=(s, c), daemon=True).start()
    threading.Thread(target=counting if first else plain, args=(c, s), daemon=True).start()
    first = False
EOF
# cutter_start N: a relay cutting its first connection at POST N; sets CUT_PORT and CUT_PID.
cutter_start()
{
	local i
	rm -f "$TEST_TMP/cut.port"
	python3 "$CUTTER" "$TEST_TMP/cut.port" "$EST_PORT" "$1" >"$TEST_TMP/cutter.log" 2>&1 &
	CUT_PID=$!
	on_exit stop_pid "$CUT_PID"
	for ((i = 0; i < 50; i++)); do
		CUT_PORT=$(cat "$TEST_TMP/cut.port" 2>/dev/null) && [ -n "$CUT_PORT" ] && return 0
		sleep 0.1
	done
	return 1
}
# enroll_cut ARGS...: enroll through the relay.
enroll_cut()
{
	"$ENROLL_BIN" enroll --server "https://127.0.0.1:$CUT_PORT" "$@" >"$OUT/stdout" \
		2>"$OUT/stderr" </dev/null
}

# The first POST loses the connection the CSR is bound to: curl sends it again over a
# new one, the RA refuses the stale binding, and the CSR is made again for the new one.
for v in 1.3 1.2; do
	type=tls-exporter
	[ "$v" = 1.2 ] && type=tls-unique
	if ! cutter_start 1; then
		fail "binding cut TLS $v: the relay starts" "$(cat "$TEST_TMP/cutter.log")"
		continue
	fi
	if check "binding cut TLS $v: a first POST over a new connection is refused, made again, accepted" \
		enroll_cut --ca "$EST_CA" --label cb --channel-binding --tls-max "$v" --user "$EST_USER" \
		--password-file "$EST_PASS_FILE" --out-key "$OUT/cut$v.key" --out-cert "$OUT/cut$v.pem"; then
		has "$OUT/stdout" "^POST /simpleenroll -> 403 over a new TLS connection: CSR made again with its $type$" \
			"binding cut TLS $v: the stale CSR's refusal is shown and the CSR made again"
		has "$OUT/stdout" "^POST /simpleenroll -> 200: certificate for $CB_NAME" \
			"binding cut TLS $v: the CSR made again gets the certificate"
		[ "$(grep -c '^wrote .*cut.*key' "$OUT/stdout")" = 1 ] &&
			[ "$(pubkey_of_cert "$OUT/cut$v.pem")" = "$(pubkey_of_key "$OUT/cut$v.key")" ] &&
			ok "binding cut TLS $v: the CSR made again keeps the key written before the first POST" ||
			fail "binding cut TLS $v: the CSR made again keeps the key" "$(cat "$OUT/stdout")"
	fi
	grep -q '^cut at POST 1' "$TEST_TMP/cutter.log" &&
		[ "$(grep -c '^connection' "$TEST_TMP/cutter.log")" = 2 ] &&
		ok "binding cut TLS $v: the relay cut the first connection at the POST; one more was made" ||
		fail "binding cut TLS $v: the relay cut the first connection at the POST" \
			"$(cat "$TEST_TMP/cutter.log")"
	stop_pid "$CUT_PID"
done
# A retry after 202 loses the connection: the same CSR goes again over a new one (a new
# CSR would be a new request). The RA accepts it once it knows the CSR; before that it
# refuses the binding, and the client says why.
if cutter_start 2; then
	enroll_cut --ca "$EST_CA" --label cb --channel-binding --user "$EST_USER" \
		--password-file "$EST_PASS_FILE" --out-key "$OUT/cutr.key" --out-cert "$OUT/cutr.pem"
	rc=$?
	has "$OUT/stdout" "^POST /simpleenroll: sent again over a new TLS connection, same CSR$" \
		"binding cut retry: the retry over a new connection re-sends the same CSR"
	[ "$(grep -c '^CSR carries' "$OUT/stdout")" = 1 ] && ! grep -q 'made again' "$OUT/stdout" &&
		ok "binding cut retry: no second CSR is made" ||
		fail "binding cut retry: no second CSR is made" "$(cat "$OUT/stdout")"
	if [ "$rc" = 0 ]; then
		[ "$(pubkey_of_cert "$OUT/cutr.pem")" = "$(pubkey_of_key "$OUT/cutr.key")" ] &&
			ok "binding cut retry: the RA accepted the known CSR on the new connection" ||
			fail "binding cut retry: the certificate is for the key written"
	else
		grep -q '^acmera enroll: POST /simpleenroll -> 403: .*(the request went over a new TLS connection' "$OUT/stderr" &&
			ok "binding cut retry: the RA's refusal says the retry went over a new connection" ||
			fail "binding cut retry: the refusal says the retry went over a new connection" \
				"exit $rc" "$(cat "$OUT/stderr")"
	fi
	stop_pid "$CUT_PID"
else
	fail "binding cut retry: the relay starts" "$(cat "$TEST_TMP/cutter.log")"
fi

# --- refusals ---
printf 'wrong\n' >"$OUT/wrong.pass" && chmod 600 "$OUT/wrong.pass"
enroll --ca "$EST_CA" --user "$EST_USER" --password-file "$OUT/wrong.pass" \
	--out-key "$OUT/x.key" --out-cert "$OUT/x.pem"
rc=$?
if [ "$rc" = 1 ] && grep -q '^acmera enroll: GET /csrattrs -> 401: ' "$OUT/stderr" && [ ! -e "$OUT/x.key" ]; then
	ok "enroll: a 401 exits 1 with the status and the RA's text, and writes no key"
else
	fail "enroll: a 401 exits 1 with the status and the RA's text, and writes no key" \
		"exit $rc" "$(cat "$OUT/stderr")"
fi
chmod 644 "$OUT/wrong.pass"
enroll --ca "$EST_CA" --user "$EST_USER" --password-file "$OUT/wrong.pass" \
	--out-key "$OUT/x.key" --out-cert "$OUT/x.pem"
rc=$?
[ "$rc" = 1 ] && grep -q 'readable by others' "$OUT/stderr" &&
	ok "enroll: a password file others may read is refused" ||
	fail "enroll: a password file others may read is refused" "exit $rc" "$(cat "$OUT/stderr")"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=stranger" \
	-keyout "$OUT/stranger.key" -out "$OUT/stranger.pem" 2>/dev/null
enroll --ca "$OUT/stranger.pem" --user "$EST_USER" --password-file "$EST_PASS_FILE" \
	--out-key "$OUT/x.key" --out-cert "$OUT/x.pem"
rc=$?
[ "$rc" = 1 ] && grep -qi 'certificate' "$OUT/stderr" && [ ! -e "$OUT/x.key" ] &&
	ok "enroll: an RA that does not chain to --ca is refused before any request" ||
	fail "enroll: an RA that does not chain to --ca is refused" "exit $rc" "$(cat "$OUT/stderr")"
# A 404 on /csrattrs only means "no attributes" (RFC 7030 4.5.2); the POST tells.
enroll --ca "$EST_CA" --label nosuch --user "$EST_USER" --password-file "$EST_PASS_FILE" \
	--name "$NAME" --out-key "$OUT/x.key" --out-cert "$OUT/x.pem"
rc=$?
[ "$rc" = 1 ] && grep -q '^GET /csrattrs -> 404: no attributes' "$OUT/stdout" &&
	grep -q -- '^acmera enroll: POST /simpleenroll -> 404: no such EST label' "$OUT/stderr" &&
	ok "enroll: an unknown label is a 404 with the RA's text" ||
	fail "enroll: an unknown label is a 404 with the RA's text" "exit $rc" "$(cat "$OUT/stderr")"

# --- usage errors exit 2 ---
for args in "--ca $EST_CA --user u --password-file $EST_PASS_FILE --out-cert $OUT/x.pem" \
	"--ca $EST_CA --bootstrap --user u --password-file $EST_PASS_FILE --out-key $OUT/x.key --out-cert $OUT/x.pem" \
	"--ca $EST_CA --out-key $OUT/x.key --out-cert $OUT/x.pem" \
	"--ca $EST_CA --user u --out-key $OUT/x.key --out-cert $OUT/x.pem" \
	"--ca $EST_CA --reenroll --user u --password-file $EST_PASS_FILE --out-key $OUT/x.key --out-cert $OUT/x.pem" \
	"--ca $EST_CA --cert $OUT/dev.pem --key $OUT/dev.key --out-key $OUT/dev.key --out-cert $OUT/x.pem" \
	"--ca $EST_CA --user u --password-file $EST_PASS_FILE --key-type rsa1024 --out-key $OUT/x.key --out-cert $OUT/x.pem" \
	"--ca $EST_CA --user u --password-file $EST_PASS_FILE --tls-max 1.1 --out-key $OUT/x.key --out-cert $OUT/x.pem"; do
	# shellcheck disable=SC2086
	enroll $args
	rc=$?
	[ "$rc" = 2 ] && ok "enroll: usage error exits 2 ($(head -n 1 "$OUT/stderr" | cut -c 16-80))" ||
		fail "enroll: usage error exits 2" "args: $args" "exit $rc" "$(cat "$OUT/stderr")"
done

# --- bootstrap (RFC 7030 4.1.1) ---
RA_FP=$(openssl x509 -in "$EST_DIR/ra.pem" -noout -fingerprint -sha256 | cut -d= -f2)
before=$(wc -l <"$EST_LOG")
enroll --bootstrap --user "$EST_USER" --password-file "$EST_PASS_FILE" \
	--out-key "$OUT/b.key" --out-cert "$OUT/b.pem"
rc=$?
after_lines=$(tail -n +"$((before + 1))" "$EST_LOG" | grep 'event=est.request')
if [ "$rc" = 1 ] && grep -q 'not a terminal' "$OUT/stderr" && [ ! -e "$OUT/b.key" ] &&
	! grep -qv 'op=cacerts' <<<"$after_lines"; then
	ok "bootstrap: without a terminal or a fingerprint the RA is not trusted, only /cacerts asked"
else
	fail "bootstrap: without a terminal or a fingerprint the RA is not trusted" "exit $rc" \
		"$(cat "$OUT/stderr")" "$after_lines"
fi
has "$OUT/stdout" "^    SHA-256 $(echo "$RA_FP" | tr -d : | tr 'A-F' 'a-f')$" \
	"bootstrap: the RA's TLS certificate fingerprint is shown"
has "$OUT/stdout" "^  CA certificate 2: .*" "bootstrap: every /cacerts certificate is shown"
check_fails "bootstrap: a fingerprint that does not match is refused" \
	enroll --bootstrap --bootstrap-fingerprint "00${RA_FP:2}" --user "$EST_USER" \
	--password-file "$EST_PASS_FILE" --out-key "$OUT/b.key" --out-cert "$OUT/b.pem"
if check "bootstrap: the matching fingerprint is accepted and the enrollment completes" \
	enroll --bootstrap --bootstrap-fingerprint "$RA_FP" --out-ca "$OUT/anchors.pem" \
	--user "$EST_USER" --password-file "$EST_PASS_FILE" --key-type p384 \
	--out-key "$OUT/b.key" --out-cert "$OUT/b.pem"; then
	has "$OUT/stdout" "^RA accepted" "bootstrap: the acceptance is shown"
	[ "$(grep -c 'BEGIN CERT' "$OUT/anchors.pem")" = 3 ] &&
		ok "bootstrap: --out-ca keeps the /cacerts certificates and the RA's TLS certificate" ||
		fail "bootstrap: --out-ca keeps the anchors" "$(grep -c 'BEGIN CERT' "$OUT/anchors.pem")"
	grep -q 'key-type p384 ignored: the RA asks for p256' "$OUT/stderr" &&
		openssl x509 -in "$OUT/b.pem" -noout -text | grep -q 'NIST CURVE: P-256' &&
		ok "enroll: a --key-type the RA did not ask for is ignored with a warning" ||
		fail "enroll: a --key-type the RA did not ask for is ignored with a warning" \
			"$(cat "$OUT/stderr")"
fi

# --- re-enrollment with the current certificate, trusting the bootstrap anchors ---
if [ -s "$OUT/dev.pem" ] && [ -s "$OUT/anchors.pem" ]; then
	cp "$OUT/dev.key" "$OUT/dev.key.before"
	if check "reenroll: the current certificate gets a new one for a new key" \
		enroll --ca "$OUT/anchors.pem" --reenroll --cert "$OUT/dev.pem" --key "$OUT/dev.key" \
		--out-key "$OUT/new.key" --out-cert "$OUT/new.pem" --out-chain "$OUT/new-chain.pem"; then
		has "$OUT/stdout" "^POST /simplereenroll -> 200: certificate for $NAME" \
			"reenroll: /simplereenroll answers with the certificate"
		! grep -q csrattrs "$OUT/stdout" && ok "reenroll: no /csrattrs asked" ||
			fail "reenroll: no /csrattrs asked" "$(cat "$OUT/stdout")"
		[ "$(pubkey_of_cert "$OUT/new.pem")" = "$(pubkey_of_key "$OUT/new.key")" ] &&
			[ "$(pubkey_of_key "$OUT/new.key")" != "$(pubkey_of_key "$OUT/dev.key")" ] &&
			cmp -s "$OUT/dev.key" "$OUT/dev.key.before" &&
			ok "reenroll: new key in the new certificate; the current key untouched" ||
			fail "reenroll: new key in the new certificate; the current key untouched"
		[ "$(san_of "$OUT/new.pem")" = "$NAME" ] &&
			[ "$(openssl x509 -in "$OUT/new.pem" -noout -subject)" = "$(openssl x509 -in "$OUT/dev.pem" -noout -subject)" ] &&
			ok "reenroll: same subject and names as the current certificate" ||
			fail "reenroll: same subject and names as the current certificate"
		check "reenroll: the new chain verifies" verify_chain "$OUT/new.pem" "$OUT/new-chain.pem"
	fi
else
	fail "reenroll: needs the first enrollment and the bootstrap anchors"
fi

# --- an IDevID client certificate on the "iot" label ---
if check "enroll: an IDevID on label iot gets its serialNumber name" \
	enroll --ca "$EST_CA" --label iot --cert "$DEVICE_CERT" --key "$DEVICE_KEY" \
	--out-key "$OUT/iot.key" --out-cert "$OUT/iot.pem"; then
	[ "$(san_of "$OUT/iot.pem")" = "$DEVICE_NAME" ] &&
		ok "enroll: the IDevID's certificate names $DEVICE_NAME" ||
		fail "enroll: the IDevID's certificate names $DEVICE_NAME" "$(san_of "$OUT/iot.pem")"
fi

# --- the wait is bounded ---
enroll --ca "$EST_CA" --user "$EST_USER" --password-file "$EST_PASS_FILE" --max-wait 0 \
	--out-key "$OUT/w.key" --out-cert "$OUT/w.pem"
rc=$?
[ "$rc" = 1 ] && grep -q 'max-wait' "$OUT/stderr" && [ -s "$OUT/w.key" ] && [ ! -e "$OUT/w.pem" ] &&
	ok "enroll: past --max-wait it gives up, keeping the pending request's key" ||
	fail "enroll: past --max-wait it gives up, keeping the key" "exit $rc" "$(cat "$OUT/stderr")"

finish
