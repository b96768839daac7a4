#!/usr/bin/env bash
# acmera issue against real peers: Pebble (ACME CA) resolving DNS-01 through BIND 9 named,
# which takes RFC 2136 updates signed with the test TSIG key.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/named.sh"
. "$(dirname "$0")/lib/pebble.sh"
. "$(dirname "$0")/lib/acmera.sh"

need openssl dig named pebble sqlite3

ZONE=issue.test
named_start "$TEST_TMP/named" "$ZONE" || bail "named starts"
on_exit named_stop
pebble_start "$TEST_TMP/pebble" || bail "pebble starts"
on_exit pebble_stop

CONF=$TEST_TMP/acmera.conf
acmera_config "$CONF" "[issuer]" "lease = 5"
CSRS=$TEST_TMP/csr
mkdir -p "$CSRS" "$TEST_TMP/out"

# --- one name ---
make_csr "$CSRS" dev1.$ZONE
if check "issue: one CSR gives a certificate" \
	"$ACMERA_BIN" issue --config "$CONF" --csr "$CSRS/dev1.$ZONE.csr" --out "$TEST_TMP/out/dev1.pem"; then
	check "issue: certificate chains to Pebble's root with the CSR's names and key" \
		verify_issued "$TEST_TMP/out/dev1.pem" "$CSRS/dev1.$ZONE.csr"
fi
if [ -z "$(txt_records "_acme-challenge.dev1.$ZONE")" ]; then
	ok "issue: no TXT record left behind"
else
	fail "issue: no TXT record left behind" "$(txt_records "_acme-challenge.dev1.$ZONE")"
fi

# --- the same CSR again: from the store, no ACME request ---
before=$(pebble_count_requests)
check "issue: same CSR again succeeds" \
	"$ACMERA_BIN" issue --config "$CONF" --csr "$CSRS/dev1.$ZONE.csr" --out "$TEST_TMP/out/dev1-again.pem"
after=$(pebble_count_requests)
if [ "$before" = "$after" ] && cmp -s "$TEST_TMP/out/dev1.pem" "$TEST_TMP/out/dev1-again.pem"; then
	ok "issue: a stored certificate is served without asking the CA"
else
	fail "issue: a stored certificate is served without asking the CA" "requests $before -> $after"
fi

# --- several names in one CSR, PKCS#7 output ---
make_csr "$CSRS" multi.$ZONE multi.$ZONE www.multi.$ZONE
if check "issue: multi-name CSR as PKCS#7" \
	"$ACMERA_BIN" issue --config "$CONF" --csr "$CSRS/multi.$ZONE.csr" --out "$TEST_TMP/out/multi.p7" --pkcs7; then
	openssl pkcs7 -in "$TEST_TMP/out/multi.p7" -print_certs -out "$TEST_TMP/out/multi.pem" 2>/dev/null
	check "issue: PKCS#7 certs-only holds the chain for both names" \
		verify_issued "$TEST_TMP/out/multi.pem" "$CSRS/multi.$ZONE.csr"
fi

# --- a batch: issued concurrently, records of all names in one UPDATE ---
BATCH=$TEST_TMP/batch
mkdir -p "$BATCH"
args=()
for i in $(seq 1 12); do
	make_csr "$BATCH" "b$i.$ZONE"
	args+=(--csr "$BATCH/b$i.$ZONE.csr")
done
updates_before=$(named_count_updates)
if check "issue: batch of 12 CSRs" \
	"$ACMERA_BIN" issue --config "$CONF" "${args[@]}" --out "$TEST_TMP/out/batch"; then
	bad=""
	for i in $(seq 1 12); do
		verify_issued "$TEST_TMP/out/batch/b$i.$ZONE.pem" "$BATCH/b$i.$ZONE.csr" >/dev/null || bad="$bad b$i"
	done
	[ -z "$bad" ] && ok "issue: every batch certificate verifies" || fail "issue: every batch certificate verifies" "bad:$bad"
	# Files queued while the issuer ran (issue_writer) are renamed into place too.
	left=$(ls -A "$TEST_TMP/out/batch")
	[ "$(printf '%s\n' "$left" | grep -c '\.pem$')" = 12 ] && ! printf '%s\n' "$left" | grep -q '\.tmp\.' &&
		ok "issue: the batch directory holds the 12 certificates and no temporary file" ||
		fail "issue: the batch directory holds the 12 certificates and no temporary file" "$left"
fi
updates=$(($(named_count_updates) - updates_before))
if [ "$updates" -ge 2 ] && [ "$updates" -le 4 ]; then
	ok "issue: batch of 12 used $updates UPDATE messages (one add, one delete per round)"
else
	fail "issue: batch of 12 used $updates UPDATE messages" "expected 2 to 4"
fi

# --- a name outside the zone: refused before anything is sent ---
make_csr "$CSRS" dev.elsewhere.test
before=$(pebble_count_requests)
"$ACMERA_BIN" issue --config "$CONF" --csr "$CSRS/dev.elsewhere.test.csr" --out "$TEST_TMP/out/x.pem" \
	>"$TEST_TMP/outside.log" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "dev.elsewhere.test is outside the configured zones" "$TEST_TMP/outside.log" &&
	[ "$(pebble_count_requests)" = "$before" ]; then
	ok "issue: a name outside the zone is refused with no ACME request"
else
	fail "issue: a name outside the zone is refused with no ACME request" "$(tail -n 5 "$TEST_TMP/outside.log")"
fi

# --- wrong TSIG key: precise error, nothing left; the job completes with the right key ---
WRONG=$TEST_TMP/wrong.conf
sed "s|^tsig_keyfile = .*|tsig_keyfile = $WRONG_TSIG_KEYFILE|" "$CONF" >"$WRONG"
make_csr "$CSRS" wk.$ZONE
"$ACMERA_BIN" issue --config "$WRONG" --timeout 8 --csr "$CSRS/wk.$ZONE.csr" --out "$TEST_TMP/out/wk.pem" \
	>"$TEST_TMP/wrongkey.log" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -Eq "key [^ ]*wrong[^ ]*.*(BADKEY|BADSIG|NOTAUTH)|(BADKEY|BADSIG|NOTAUTH).*wrong" "$TEST_TMP/wrongkey.log"; then
	ok "issue: a wrong TSIG key is reported naming the key and the TSIG error"
else
	fail "issue: a wrong TSIG key is reported naming the key and the TSIG error" "$(grep -m3 dns "$TEST_TMP/wrongkey.log")"
fi
[ -z "$(txt_records "_acme-challenge.wk.$ZONE")" ] && ok "issue: wrong key leaves no TXT record" ||
	fail "issue: wrong key leaves no TXT record"
check "issue: the same job completes with the right key" \
	"$ACMERA_BIN" issue --config "$CONF" --csr "$CSRS/wk.$ZONE.csr" --out "$TEST_TMP/out/wk.pem"

# --- the store: one certificate per CSR ---
dups=$(sqlite3 "$TEST_TMP/acmera.db" "SELECT COUNT(*) FROM (SELECT csr_sha256 FROM certs GROUP BY csr_sha256 HAVING COUNT(*) > 1)")
[ "$dups" = "0" ] && ok "issue: no CSR has two certificates in the store" ||
	fail "issue: no CSR has two certificates in the store" "$dups duplicated"
left=$(sqlite3 "$TEST_TMP/acmera.db" "SELECT COUNT(*) FROM dns_records")
[ "$left" = "0" ] && ok "issue: the store lists no published record" ||
	fail "issue: the store lists no published record" "$left left"

finish
