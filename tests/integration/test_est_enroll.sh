#!/usr/bin/env bash
# acmera enroll (the EST client) against real peers: acmera serve as the EST RA, issuing
# through Pebble (ACME CA) with DNS-01 records in BIND 9 named. The RA answers 202 at first
# ("wait = 0"), so every enrollment goes through Retry-After.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/named.sh"
. "$(dirname "$0")/lib/pebble.sh"
. "$(dirname "$0")/lib/acmera.sh"
. "$(dirname "$0")/lib/est.sh"

need openssl curl named pebble

ZONE=enroll.test
named_start "$TEST_TMP/named" "$ZONE" || bail "named starts"
on_exit named_stop
pebble_start "$TEST_TMP/pebble" || bail "pebble starts"
on_exit pebble_stop
est_start "$TEST_TMP/est" "{user}.$ZONE" "wait = 0" "retry_after = 1" || bail "acmera serve starts"

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
	"--ca $EST_CA --user u --password-file $EST_PASS_FILE --key-type rsa1024 --out-key $OUT/x.key --out-cert $OUT/x.pem"; do
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
