#!/usr/bin/env bash
# `acmera ca` refuses bad ACME requests precisely and changes nothing (issue 4). With a valid
# account and a ready order in place, each bad request (malformed JWS, used or unknown nonce,
# wrong url, unknown kid, deactivated account, oversized body, wrong Content-Type, a CSR that
# does not match the order, GET on a POST resource, ...) must get the RFC 8555 problem type
# and HTTP status, a Replay-Nonce, and leave every ca_* table (row counts and the statuses of
# accounts, orders, authorizations, challenges, certificates) exactly as it was.
# The client is lib/acme_jws.py (Debian's python3 with python3-josepy and -cryptography).
set -uo pipefail
here=$(dirname "$0")
. "$here/lib/common.sh"
. "$here/lib/named.sh"
. "$here/lib/acmera.sh"
. "$here/lib/acmeca.sh"

need named nsupdate dig openssl curl sqlite3
PY=/usr/bin/python3
"$PY" -c 'import josepy, cryptography' 2>/dev/null ||
	bail "Debian's python3 imports josepy and cryptography (python3-josepy)"

ZONE=bad-input.acmera.test
named_start "$TEST_TMP/named" "$ZONE" || bail "named starts"
acmeca_start "$TEST_TMP/ca" || bail "acmera ca starts"

STATE=$TEST_TMP/client.json
jws()
{
	"$PY" "$here/lib/acme_jws.py" "$STATE" "$@"
}
jws init "$ACME_DIRECTORY" "$ACME_CA_BUNDLE" || bail "acme_jws.py init"

# The state a refused request must not change: row counts and every status.
snapshot()
{
	sqlite3 "$ACMECA_DIR/ca.db" "
		select 'accounts', count(*), group_concat(id || '=' || status) from ca_accounts;
		select 'authzs', count(*), group_concat(id || '=' || status) from ca_authzs;
		select 'challenges', count(*), group_concat(id || '=' || status) from ca_challenges;
		select 'orders', count(*), group_concat(id || '=' || status) from ca_orders;
		select 'order_authzs', count(*) from ca_order_authzs;
		select 'certs', count(*), group_concat(id || '=' || revoked) from ca_certs;"
}

publish()
{
	local name=$1 value=$2
	printf 'server 127.0.0.1 %s\nzone %s\nupdate add %s. 60 TXT "%s"\nsend\n' \
		"$NAMED_PORT" "$DNS_ZONE" "$name" "$value" | nsupdate -k "$TSIG_KEYFILE" -t 5
}

unpublish()
{
	printf 'server 127.0.0.1 %s\nzone %s\nupdate delete %s. TXT\nsend\n' \
		"$NAMED_PORT" "$DNS_ZONE" "$1" | nsupdate -k "$TSIG_KEYFILE" -t 5
}

# ---- set-up: two accounts (one deactivated), a ready order ----

line=$(jws account alice) || bail "acme_jws.py account alice runs"
check "a valid account is created (201, Replay-Nonce)" test "${line% *}" = "201 - nonce"
line=$(jws account mallory) || bail "acme_jws.py account mallory runs"
check "a second account is created" test "${line% *}" = "201 - nonce"
check "the second account deactivates itself" jws deactivate mallory
line=$(jws account bob) || bail "acme_jws.py account bob runs"
check "a third account is created" test "${line% *}" = "201 - nonce"

name=dev1.$DNS_ZONE
jws order o1 alice "$name" >"$TEST_TMP/o1.txt" 2>"$TEST_TMP/o1.err" ||
	bail "an order for $name is created" "$(cat "$TEST_TMP/o1.err")"
ok "an order for $name is created"
published=()
while read -r txt_name txt_value; do
	publish "$txt_name" "$txt_value" && published+=("$txt_name")
done <"$TEST_TMP/o1.txt"
check "its dns-01 TXT record is published" test "${#published[@]}" -eq 1
check "the order becomes ready after its challenge" jws respond o1
for n in "${published[@]}"; do
	unpublish "$n"
done
check "the order's status is ready" test "$(jws status o1)" = ready

# ---- the bad requests ----

# refused DESC STATUS TYPE CASE ACCOUNT [ORDER]: the case is answered STATUS with problem
# TYPE as application/problem+json with a Replay-Nonce, and the store is unchanged.
refused()
{
	local desc=$1 status=$2 type=$3 before after got
	local want="$status $type nonce application/problem+json"
	shift 3
	before=$(snapshot)
	got=$(jws case "$@" 2>"$TEST_TMP/case.err")
	after=$(snapshot)
	if [ "$got" = "$want" ]; then
		ok "$desc: $status $type with a Replay-Nonce"
	else
		fail "$desc: $status $type with a Replay-Nonce" "answered: ${got:-nothing}
$(tail -n 3 "$TEST_TMP/case.err")"
	fi
	if [ -n "$before" ] && [ "$before" = "$after" ]; then
		ok "$desc: the store is unchanged"
	else
		fail "$desc: the store is unchanged" "before: $before
after: $after"
	fi
}

refused "a body that is not JSON" 400 malformed not-json alice
refused "a JSON body that is not a JWS object" 400 malformed not-object alice
refused "a JWS without its signature" 400 malformed no-signature alice
refused "a JWS with bad base64url" 400 malformed bad-base64 alice
refused "a JWS whose signature does not verify" 400 malformed bad-signature alice
refused "a JWS with alg none" 400 badSignatureAlgorithm alg-none alice
refused "a nonce used once already" 400 badNonce used-nonce alice
refused "a nonce this CA never issued" 400 badNonce unknown-nonce alice
refused "a protected url that is not the request's" 401 unauthorized wrong-url alice
refused "a kid naming no account" 400 accountDoesNotExist unknown-kid alice
refused "a kid that is not an account URL of this CA" 400 accountDoesNotExist foreign-kid alice
refused "newOrder signed with a jwk instead of a kid" 400 malformed jwk-not-kid alice
refused "a request of a deactivated account" 401 unauthorized deactivated mallory
refused "a body over 64 KiB" 413 malformed oversized alice
refused "Content-Type application/json" 415 malformed content-type alice
refused "a CSR for a name outside the order at finalize" 400 badCSR csr-outside alice o1
refused "a CSR with a name more than the order at finalize" 400 badCSR csr-extra alice o1
refused "a CSR missing a name of the order at finalize" 400 badCSR csr-missing alice o1
refused "a newOrder for a name outside the CA's domains" 400 rejectedIdentifier order-outside alice
refused "another account reading the order" 404 malformed foreign-order bob o1
refused "another account finalizing the order" 404 malformed foreign-finalize bob o1
refused "a GET on a POST resource (the order)" 405 malformed get-post alice o1
check "the order is still ready after the refused finalizations" test "$(jws status o1)" = ready

# A refused request does not use up its nonce, and the CA still works afterwards.
check "no challenge TXT record is left in the zone" test -z "$(zone_challenge_txt)"
line=$(jws account alice2) || true
check "a new account still works after all the refusals" test "${line% *}" = "201 - nonce"

pid=$ACMECA_PID
acmeca_stop
check "acmera ca is stopped by PID" _pid_gone "$pid"
check "acmera ca's log has no sanitizer report" no_sanitizer_report "$ACMECA_LOG"
check "acmera ca answered no request with a 5xx status" acmeca_no_5xx "$ACMECA_LOG"
finish
