#!/usr/bin/env bash
# The DNS-01 publisher (src/dns) against BIND 9 named: TSIG-signed UPDATEs add and delete
# exactly the given TXT values, a batch of 300 records is one UPDATE, and refusals (wrong
# key, names outside the zone or not _acme-challenge, a server that is down) say what
# went wrong and, where acmera refuses, send nothing. A second named of this script's own
# takes hmac-sha384 and hmac-sha512 keys. Driven by tests/unit/dns/dns_live_driver.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/named.sh"

need named dig nsupdate tsig-keygen python3
DRIVER=$ACMERA_BUILD/tests/unit/dns/dns_live_driver
[ -x "$DRIVER" ] || bail "dns_live_driver is built" "not found: $DRIVER (build with ninja -C $ACMERA_BUILD)"

ZONE=example.test
named_start "$TEST_TMP/named" "$ZONE" || bail "named starts for $ZONE"
ok "named starts for $ZONE on port $NAMED_PORT"
SERVER=127.0.0.1:$NAMED_PORT

# txt NAME: the TXT values at NAME, one per line, sorted, without quotes.
txt()
{
	dig +short +time=2 +tries=1 @127.0.0.1 -p "$NAMED_PORT" "$1" TXT | tr -d '"' | sort
}

# drive ARGS...: run the driver; its stderr goes to $TEST_TMP/driver.err.
drive()
{
	"$DRIVER" "$@" 2>"$TEST_TMP/driver.err"
}

# expect_error DESC PATTERN CMD...: CMD fails and its stderr matches PATTERN.
expect_error()
{
	local desc=$1 pattern=$2 rc=0
	shift 2
	"$@" 2>"$TEST_TMP/driver.err" || rc=$?
	if [ "$rc" -ne 0 ] && grep -qE -- "$pattern" "$TEST_TMP/driver.err"; then
		ok "$desc"
	else
		fail "$desc" "exit status $rc; wanted an error matching: $pattern
$(cat "$TEST_TMP/driver.err")"
	fi
}

# nsupdate_as KEYFILE CMD...: one nsupdate transaction with the given update lines.
nsupdate_as()
{
	local key=$1
	shift
	{
		printf 'server 127.0.0.1 %s\nzone %s\n' "$NAMED_PORT" "$ZONE"
		printf '%s\n' "$@"
		printf 'send\n'
	} | nsupdate -t 5 -k "$key" 2>&1
}

# --- the BIND update-policy itself (nsupdate, not acmera: acmera refuses these first)
out=$(nsupdate_as "$TSIG_KEYFILE" "update add _acme-challenge.policy.$ZONE. 60 TXT granted")
if [ "$(txt "_acme-challenge.policy.$ZONE")" = granted ]; then
	ok "update-policy grants TXT at _acme-challenge names to acmera-test"
else
	fail "update-policy grants TXT at _acme-challenge names to acmera-test" "$out"
fi
out=$(nsupdate_as "$TSIG_KEYFILE" "update add www.$ZONE. 60 TXT evil")
if grep -q REFUSED <<<"$out" && [ -z "$(txt "www.$ZONE")" ]; then
	ok "update-policy refuses TXT at a name that is not _acme-challenge"
else
	fail "update-policy refuses TXT at a name that is not _acme-challenge" "$out"
fi
out=$(nsupdate_as "$TSIG_KEYFILE" "update add _acme-challenge.policy.$ZONE. 60 HINFO cpu os")
if grep -q REFUSED <<<"$out"; then
	ok "update-policy refuses other types at _acme-challenge names"
else
	fail "update-policy refuses other types at _acme-challenge names" "$out"
fi

# --- add, and delete exactly one value
N1=_acme-challenge.dev1.$ZONE
check "ADD publishes a TXT record" drive "$SERVER" "$TSIG_KEYFILE" "$ZONE" add "$N1" value-one
if [ "$(txt "$N1")" = value-one ]; then
	ok "dig sees the added value"
else
	fail "dig sees the added value" "got: $(txt "$N1")"
fi
check "ADD of a second value at the same name" \
	drive "$SERVER" "$TSIG_KEYFILE" "$ZONE" add "$N1" value-two
check "DELETE of one value" drive "$SERVER" "$TSIG_KEYFILE" "$ZONE" delete "$N1" value-one
if [ "$(txt "$N1")" = value-two ]; then
	ok "DELETE removes only that value; the other stays"
else
	fail "DELETE removes only that value; the other stays" "got: $(txt "$N1" | tr '\n' ' ')"
fi
check "dns_wait_visible sees the remaining value" \
	env DNS_WAIT_MS=3000 "$DRIVER" "$SERVER" - "$ZONE" wait "$N1" value-two
expect_error "dns_wait_visible times out naming what is missing" \
	"TXT $N1 \"value-one\" not visible at 127\.0\.0\.1 port $NAMED_PORT after 300 ms" \
	env DNS_WAIT_MS=300 "$DRIVER" "$SERVER" - "$ZONE" wait "$N1" value-one

# --- zone discovery
zone=$("$DRIVER" "$SERVER" - - soa "_acme-challenge.a.b.$ZONE" 2>"$TEST_TMP/driver.err")
if [ "$zone" = "$ZONE" ]; then
	ok "dns_zone_find_soa finds $ZONE for a name two labels below it"
else
	fail "dns_zone_find_soa finds $ZONE for a name two labels below it" \
		"got '$zone': $(cat "$TEST_TMP/driver.err")"
fi

# --- 300 records, one UPDATE (over TCP: the message is far above 512 bytes)
args=()
for i in $(seq 1 300); do
	args+=("_acme-challenge.host$i.$ZONE" "k$i-LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0")
done
before=$(named_count_updates)
check "ADD of 300 records" drive "$SERVER" "$TSIG_KEYFILE" "$ZONE" add "${args[@]}"
after=$(named_count_updates)
if [ $((after - before)) -eq 1 ]; then
	ok "300 records went in one UPDATE message"
else
	fail "300 records went in one UPDATE message" "named counted $((after - before))"
fi
if [ "$(txt "_acme-challenge.host1.$ZONE")" = "k1-LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0" ] &&
	[ "$(txt "_acme-challenge.host300.$ZONE")" = "k300-LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0" ]; then
	ok "the first and the last of the 300 are served"
else
	fail "the first and the last of the 300 are served"
fi
check "dns_wait_visible sees all 300" \
	env DNS_WAIT_MS=10000 "$DRIVER" "$SERVER" - "$ZONE" wait "${args[@]}"
before=$(named_count_updates)
check "DELETE of the 300 records" drive "$SERVER" "$TSIG_KEYFILE" "$ZONE" delete "${args[@]}"
after=$(named_count_updates)
if [ $((after - before)) -eq 1 ] && [ -z "$(txt "_acme-challenge.host150.$ZONE")" ]; then
	ok "the 300 were deleted in one UPDATE message"
else
	fail "the 300 were deleted in one UPDATE message" "named counted $((after - before))"
fi

# --- refusals
expect_error "a key named does not know is reported as BADKEY, naming key, zone, server" \
	"^dns_live_driver: UPDATE of zone $ZONE at $SERVER with key wrong-key: NOTAUTH, TSIG BAD(KEY|SIG) \(.*'wrong-key'" \
	drive "$SERVER" "$WRONG_TSIG_KEYFILE" "$ZONE" add "$N1" nope
sed 's/secret "[^"]*"/secret "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="/' "$TSIG_KEYFILE" \
	>"$TEST_TMP/badsecret.key"
chmod 600 "$TEST_TMP/badsecret.key"
expect_error "a wrong secret for a known key is reported as BADSIG" \
	"with key acmera-test: NOTAUTH, TSIG BADSIG" \
	drive "$SERVER" "$TEST_TMP/badsecret.key" "$ZONE" add "$N1" nope
if [ "$(txt "$N1")" = value-two ]; then
	ok "refused UPDATEs changed nothing"
else
	fail "refused UPDATEs changed nothing" "got: $(txt "$N1" | tr '\n' ' ')"
fi

before=$(named_count_updates)
expect_error "a name outside the zone is refused" \
	"refusing _acme-challenge\.dev1\.example\.org: not an _acme-challenge name in zone $ZONE" \
	drive "$SERVER" "$TSIG_KEYFILE" "$ZONE" add "$N1" ok "_acme-challenge.dev1.example.org" bad
expect_error "a name that is not _acme-challenge is refused" \
	"refusing www\.$ZONE" drive "$SERVER" "$TSIG_KEYFILE" "$ZONE" add "www.$ZONE" bad
after=$(named_count_updates)
if [ "$after" -eq "$before" ]; then
	ok "refused names sent no UPDATE at all"
else
	fail "refused names sent no UPDATE at all" "named counted $((after - before))"
fi
chmod 644 "$TEST_TMP/badsecret.key"
expect_error "a key file readable by others is refused" "mode 0644 .*chmod 600" \
	drive "$SERVER" "$TEST_TMP/badsecret.key" "$ZONE" add "$N1" nope

# --- named down
named_stop
expect_error "with named stopped, the error is a timeout naming the server" \
	"^dns_live_driver: UPDATE of zone $ZONE at $SERVER with key acmera-test: no answer after 3 attempts of 300 ms \(timeout\)" \
	env DNS_TIMEOUT_MS=300 DNS_RETRIES=2 "$DRIVER" "$SERVER" "$TSIG_KEYFILE" "$ZONE" add "$N1" v

# --- hmac-sha384 and hmac-sha512 against a second named of our own (named.sh's knows only
# its hmac-sha256 key). acmera signs and verifies TSIG itself (src/dns/tsig.c): ldns 1.8.3
# cannot sign with hmac-sha384.
D2=$TEST_TMP/named2
mkdir -p "$D2" || bail "a directory for the second named"
if ! (umask 077 && tsig-keygen -a hmac-sha384 acmera-384 >"$D2/k384.key" &&
	tsig-keygen -a hmac-sha512 acmera-512 >"$D2/k512.key" &&
	tsig-keygen -a hmac-sha384 acmera-384 >"$D2/bad384.key" &&
	tsig-keygen -a hmac-sha512 acmera-512 >"$D2/bad512.key"); then
	bail "tsig-keygen makes hmac-sha384 and hmac-sha512 keys"
fi
PORT2=$(free_port) || bail "a free port for the second named"
SERVER2=127.0.0.1:$PORT2
cat >"$D2/named.conf" <<EOF
include "$D2/k384.key";
include "$D2/k512.key";
options {
	directory "$D2";
	pid-file "$D2/named.pid";
	session-keyfile "$D2/session.key";
	managed-keys-directory "$D2";
	listen-on port $PORT2 { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
	allow-transfer { none; };
};
controls { };
logging {
	channel main { file "$D2/named.log"; print-time yes; print-category yes; severity info; };
	category default { main; };
};
zone "$ZONE" {
	type primary;
	file "$D2/$ZONE.db";
	update-policy { grant acmera-384 zonesub TXT; grant acmera-512 zonesub TXT; };
};
EOF
cat >"$D2/$ZONE.db" <<EOF
\$TTL 60
@	IN SOA ns1.$ZONE. hostmaster.$ZONE. 1 60 60 600 60
@	IN NS ns1.$ZONE.
ns1	IN A 127.0.0.1
EOF
named -f -c "$D2/named.conf" >>"$D2/named.out" 2>&1 &
NAMED2_PID=$!
on_exit stop_pid "$NAMED2_PID"

# soa2: the zone's SOA at the second named (empty until it serves the zone).
soa2()
{
	[ -n "$(dig +short +time=1 +tries=1 @127.0.0.1 -p "$PORT2" "$ZONE" SOA 2>/dev/null)" ]
}
if ! wait_for "the second named to answer" 20 soa2; then
	show_log "$D2/named.out" 20
	bail "a second named with hmac-sha384 and hmac-sha512 keys starts"
fi
# named answers queries a moment before it applies updates (SERVFAIL meanwhile): wait,
# bounded, until a throwaway record goes in, so that the checks below test TSIG only.
updates2()
{
	"$DRIVER" "$SERVER2" "$D2/k512.key" "$ZONE" add "_acme-challenge.ready.$ZONE" ready 2>/dev/null &&
		"$DRIVER" "$SERVER2" "$D2/k512.key" "$ZONE" delete "_acme-challenge.ready.$ZONE" ready 2>/dev/null
}
if ! wait_for "the second named to take updates" 20 updates2; then
	show_log "$D2/named.log" 20
	bail "the second named takes updates"
fi
ok "a second named with hmac-sha384 and hmac-sha512 keys starts on port $PORT2"

# txt2 NAME: as txt, at the second named.
txt2()
{
	dig +short +time=2 +tries=1 @127.0.0.1 -p "$PORT2" "$1" TXT | tr -d '"' | sort
}

for bits in 384 512; do
	name=_acme-challenge.sha$bits.$ZONE
	check "ADD signed with hmac-sha$bits" \
		drive "$SERVER2" "$D2/k$bits.key" "$ZONE" add "$name" "one-$bits" "$name" "two-$bits"
	if [ "$(txt2 "$name" | tr '\n' ' ')" = "one-$bits two-$bits " ]; then
		ok "dig sees both values added with hmac-sha$bits"
	else
		fail "dig sees both values added with hmac-sha$bits" \
			"got: $(txt2 "$name" | tr '\n' ' ')"
	fi
	check "DELETE signed with hmac-sha$bits" \
		drive "$SERVER2" "$D2/k$bits.key" "$ZONE" delete "$name" "one-$bits"
	if [ "$(txt2 "$name")" = "two-$bits" ]; then
		ok "DELETE with hmac-sha$bits removes only that value"
	else
		fail "DELETE with hmac-sha$bits removes only that value" \
			"got: $(txt2 "$name" | tr '\n' ' ')"
	fi
	expect_error "a wrong hmac-sha$bits secret is reported as BADSIG" \
		"^dns_live_driver: UPDATE of zone $ZONE at $SERVER2 with key acmera-$bits: NOTAUTH, TSIG BADSIG" \
		drive "$SERVER2" "$D2/bad$bits.key" "$ZONE" add "$name" "forged-$bits"
	if [ "$(txt2 "$name")" = "two-$bits" ]; then
		ok "the hmac-sha$bits UPDATE with the wrong secret changed nothing"
	else
		fail "the hmac-sha$bits UPDATE with the wrong secret changed nothing" \
			"got: $(txt2 "$name" | tr '\n' ' ')"
	fi
done

# 300 records in one hmac-sha384 UPDATE: over TCP, the answer's TSIG verified all the same.
args=()
for i in $(seq 1 300); do
	args+=("_acme-challenge.h$i.$ZONE" "v$i-LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0")
done
check "ADD of 300 records signed with hmac-sha384, over TCP" \
	drive "$SERVER2" "$D2/k384.key" "$ZONE" add "${args[@]}"
if [ "$(txt2 "_acme-challenge.h300.$ZONE")" = "v300-LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0" ]; then
	ok "the last of the 300 hmac-sha384 records is served"
else
	fail "the last of the 300 hmac-sha384 records is served" \
		"got: $(txt2 "_acme-challenge.h300.$ZONE")"
fi
stop_pid "$NAMED2_PID"

finish
