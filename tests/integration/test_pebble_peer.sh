#!/usr/bin/env bash
# The test peers work together before acmera is put between them: Pebble serves its ACME
# directory over HTTPS trusted through our test CA, its issuing root chains, its request
# count (used by benchmarks) is exact, and lego, an independent ACME client, obtains a
# certificate for a name in the test zone by DNS-01 published with TSIG-signed RFC 2136
# updates to named, which named's update-policy accepts. The leaf verifies against Pebble's
# root and intermediate. Both peers are stopped by PID.
set -uo pipefail
here=$(dirname "$0")
. "$here/lib/common.sh"
. "$here/lib/named.sh"
. "$here/lib/pebble.sh"

need named pebble lego openssl curl dig

named_start "$TEST_TMP/named" peer.acmera.test || bail "named starts"
ok "named serves $DNS_ZONE on 127.0.0.1:$NAMED_PORT"
pebble_start "$TEST_TMP/pebble" || bail "pebble starts"
ok "pebble serves $ACME_DIRECTORY"

directory_lists_new_order()
{
	curl -sS --fail --max-time 5 --cacert "$ACME_CA_BUNDLE" "$ACME_DIRECTORY" |
		grep -q '"newOrder": *"https://127.0.0.1:'"$PEBBLE_PORT"'/'
}
check "the directory lists newOrder on Pebble's address, trusted via ACME_CA_BUNDLE" \
	directory_lists_new_order
check_fails "Pebble's HTTPS is not trusted without the test CA" \
	curl -sS --fail --max-time 5 --cacert /etc/ssl/certs/ca-certificates.crt "$ACME_DIRECTORY"
check "Pebble's root is a self-signed CA" openssl verify -CAfile "$PEBBLE_ROOT" "$PEBBLE_ROOT"
check "Pebble's intermediate chains to its root" \
	openssl verify -CAfile "$PEBBLE_ROOT" "$PEBBLE_INTERMEDIATE"

# pebble_count_requests must count exactly the ACME requests made: 2 x GET /dir and
# 1 x HEAD newNonce add 3; a method the endpoint refuses (405) reaches no handler.
c0=$(pebble_count_requests)
nonce_url=$(curl -sS --max-time 5 --cacert "$ACME_CA_BUNDLE" "$ACME_DIRECTORY" |
	sed -n 's/.*"newNonce": *"\([^"]*\)".*/\1/p')
curl -sS --max-time 5 --cacert "$ACME_CA_BUNDLE" -o /dev/null "$ACME_DIRECTORY"
curl -sS --max-time 5 --cacert "$ACME_CA_BUNDLE" -o /dev/null -I "$nonce_url"
c1=$(pebble_count_requests)
curl -sS --max-time 5 --cacert "$ACME_CA_BUNDLE" -o /dev/null -X PUT "$ACME_DIRECTORY"
c2=$(pebble_count_requests)
check "pebble_count_requests counts 3 for GET /dir twice and HEAD newNonce once" \
	test "$((c1 - c0))" -eq 3
check "pebble_count_requests does not count a refused method (405)" test "$c2" -eq "$c1"

# The TSIG key, as lego's rfc2136 provider wants it (environment, never argv).
key_field()
{
	sed -n "s/^[[:space:]]*$1[[:space:]]\{1,\}\"\{0,1\}\([^\";[:space:]]*\)\"\{0,1\}.*/\1/p" \
		"$TSIG_KEYFILE" | head -n 1
}
tsig_name=$(key_field key)
tsig_alg=$(key_field algorithm)
tsig_secret=$(key_field secret)
if [ -z "$tsig_name" ] || [ -z "$tsig_alg" ] || [ -z "$tsig_secret" ]; then
	bail "read the TSIG key name, algorithm and secret from $TSIG_KEYFILE"
fi

name=lego.$DNS_ZONE
updates0=$(named_count_updates)
requests0=$(pebble_count_requests)
lego_rc=0
LEGO_CA_CERTIFICATES=$ACME_CA_BUNDLE \
	RFC2136_NAMESERVER=127.0.0.1:$NAMED_PORT \
	RFC2136_TSIG_KEY=$tsig_name. \
	RFC2136_TSIG_ALGORITHM=${tsig_alg%.}. \
	RFC2136_TSIG_SECRET=$tsig_secret \
	RFC2136_TTL=10 RFC2136_PROPAGATION_TIMEOUT=60 RFC2136_POLLING_INTERVAL=1 \
	timeout 180 lego --server "$ACME_DIRECTORY" --accept-tos --email peer@acmera.test \
	--path "$TEST_TMP/lego" --key-type ec256 --dns rfc2136 \
	--dns.resolvers "127.0.0.1:$NAMED_PORT" --dns.disable-cp \
	--domains "$name" run >"$TEST_TMP/lego.log" 2>&1 || lego_rc=$?
crt=$TEST_TMP/lego/certificates/$name.crt
if [ "$lego_rc" -eq 0 ] && [ -s "$crt" ]; then
	ok "lego obtains a certificate for $name by DNS-01 through named"
else
	fail "lego obtains a certificate for $name by DNS-01 through named" \
		"lego exit status $lego_rc
$(tail -n 25 "$TEST_TMP/lego.log")"
	show_log "$PEBBLE_LOG" 25
	show_log "$NAMED_DIR/named.log" 25
fi
note "lego made $(($(pebble_count_requests) - requests0)) ACME requests to Pebble"
updates=$(($(named_count_updates) - updates0))
check "named accepted lego's TSIG-signed updates (add and delete: $updates)" \
	test "$updates" -ge 2

txt_left()
{
	dig +short +time=2 +tries=1 -p "$NAMED_PORT" @127.0.0.1 "_acme-challenge.$name" TXT
}
check "lego's challenge TXT record is gone again" test -z "$(txt_left)"

openssl x509 -in "$crt" -out "$TEST_TMP/leaf.pem" 2>/dev/null
check "the leaf verifies against Pebble's root and intermediate" \
	openssl verify -CAfile "$PEBBLE_ROOT" -untrusted "$PEBBLE_INTERMEDIATE" "$TEST_TMP/leaf.pem"
leaf_names_only()
{
	local sans
	sans=$(openssl x509 -in "$TEST_TMP/leaf.pem" -noout -ext subjectAltName) || return 1
	[ "$(grep -o 'DNS:[^, ]*' <<<"$sans")" = "DNS:$1" ]
}
check "the leaf names exactly $name" leaf_names_only "$name"

# A restart loses Pebble's state and makes a new root: the old leaf no longer verifies.
old_pid=$PEBBLE_PID
if pebble_restart; then
	ok "pebble restarts on the same port"
	check "after a restart the directory answers again" directory_lists_new_order
	check_fails "after a restart Pebble's new root no longer verifies the old leaf" \
		openssl verify -CAfile "$PEBBLE_ROOT" -untrusted "$PEBBLE_INTERMEDIATE" \
		"$TEST_TMP/leaf.pem"
	check "the old Pebble process is gone" _pid_gone "$old_pid"
else
	fail "pebble restarts on the same port"
fi

pebble_pid=$PEBBLE_PID
named_pid=$NAMED_PID
pebble_stop
named_stop
check "pebble is stopped by PID" _pid_gone "$pebble_pid"
check "named is stopped by PID" _pid_gone "$named_pid"
finish
