#!/usr/bin/env bash
# acmera issue when things go wrong: half of all nonces rejected, Pebble stopped mid-run,
# named stopped, and acmera itself killed with SIGKILL in the middle of its orders. Every
# job must still complete, with no TXT record left and no CSR certified twice.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/named.sh"
. "$(dirname "$0")/lib/pebble.sh"
. "$(dirname "$0")/lib/acmera.sh"

need openssl dig named pebble sqlite3

ZONE=resilience.test
named_start "$TEST_TMP/named" "$ZONE" || bail "named starts"
on_exit named_stop
pebble_start "$TEST_TMP/pebble" PEBBLE_WFE_NONCEREJECT=50 || bail "pebble starts"
on_exit pebble_stop

CONF=$TEST_TMP/acmera.conf
acmera_config "$CONF" "[issuer]" "lease = 5"
mkdir -p "$TEST_TMP/csr" "$TEST_TMP/out"

# csrs PREFIX N: make N CSRs and print their --csr arguments.
csrs()
{
	local i
	for i in $(seq 1 "$2"); do
		make_csr "$TEST_TMP/csr" "$1$i.$ZONE"
		printf -- '--csr %s ' "$TEST_TMP/csr/$1$i.$ZONE.csr"
	done
}

# all_issued PREFIX N DIR: every certificate is there and verifies.
all_issued()
{
	local i bad=""
	for i in $(seq 1 "$2"); do
		verify_issued "$3/$1$i.$ZONE.pem" "$TEST_TMP/csr/$1$i.$ZONE.csr" >/dev/null 2>&1 || bad="$bad $1$i"
	done
	[ -z "$bad" ] || { echo "missing or bad:$bad"; return 1; }
}

# no_txt_left PREFIX N: no _acme-challenge TXT record remains for these names.
no_txt_left()
{
	local i left=""
	for i in $(seq 1 "$2"); do
		[ -z "$(txt_records "_acme-challenge.$1$i.$ZONE")" ] || left="$left $1$i"
	done
	[ -z "$left" ] || { echo "TXT left for:$left"; return 1; }
}

store_sql()
{
	sqlite3 "$TEST_TMP/acmera.db" "$1"
}

# --- half of all nonces rejected: badNonce is retried, every certificate arrives ---
# shellcheck disable=SC2046
if "$ACMERA_BIN" issue --config "$CONF" --log-level debug $(csrs nonce 8) --out "$TEST_TMP/out/nonce" \
	2>"$TEST_TMP/nonce.log"; then
	ok "nonces: 8 certificates with Pebble rejecting 50% of nonces"
	check "nonces: every certificate verifies" all_issued nonce 8 "$TEST_TMP/out/nonce"
else
	fail "nonces: 8 certificates with Pebble rejecting 50% of nonces" "$(grep -m5 -E 'warn|error' "$TEST_TMP/nonce.log")"
fi
bad_nonces=$(grep -c 'event=acme.bad_nonce' "$TEST_TMP/nonce.log" || true)
[ "$bad_nonces" -ge 5 ] && ok "nonces: $bad_nonces badNonce answers were retried" ||
	fail "nonces: badNonce answers were retried" "only $bad_nonces seen: is rejection on?"
# The rest runs with every nonce accepted, so that request counts mean what they say.
pebble_stop
pebble_start "$TEST_TMP/pebble2" PEBBLE_WFE_NONCEREJECT=0 || bail "pebble starts again"
acmera_config "$CONF" "[issuer]" "lease = 5"

# --- Pebble stopped mid-run: precise error, and the jobs complete once it is back ---
args=$(csrs ca 4)
# shellcheck disable=SC2086
"$ACMERA_BIN" issue --config "$CONF" $args --out "$TEST_TMP/out/ca" >"$TEST_TMP/ca.log" 2>&1 &
pid=$!
on_exit stop_pid "$pid"
wait_for "acmera to publish its records" 30 grep -q 'event=dns.update op=add' "$TEST_TMP/ca.log"
pebble_stop
wait_for "acmera to notice Pebble is gone" 30 grep -q "Couldn't connect to server" "$TEST_TMP/ca.log"
if grep -q "event=job.deferred.*Couldn't connect to server" "$TEST_TMP/ca.log"; then
	ok "pebble down: jobs are deferred with the connection error"
else
	fail "pebble down: jobs are deferred with the connection error" "$(grep -m3 -E 'warn|error' "$TEST_TMP/ca.log")"
fi
sleep 2
pebble_restart || bail "pebble restarts"
if wait_for "acmera to finish after Pebble is back" 120 sh -c "! kill -0 $pid 2>/dev/null"; then
	wait "$pid"
	rc=$?
	[ "$rc" -eq 0 ] && ok "pebble down: acmera completes once Pebble is back" ||
		fail "pebble down: acmera completes once Pebble is back" "exit $rc; $(tail -n 5 "$TEST_TMP/ca.log")"
else
	fail "pebble down: acmera completes once Pebble is back" "still running"
fi
check "pebble down: every certificate verifies" all_issued ca 4 "$TEST_TMP/out/ca"
check "pebble down: no TXT record left" no_txt_left ca 4

# --- named stopped: the UPDATE times out naming the server; completes once named is back ---
named_stop
args=$(csrs dns 3)
# shellcheck disable=SC2086
"$ACMERA_BIN" issue --config "$CONF" $args --out "$TEST_TMP/out/dns" >"$TEST_TMP/dns.log" 2>&1 &
pid=$!
on_exit stop_pid "$pid"
if wait_for "the UPDATE to time out" 60 grep -q "event=dns.update op=add.*error=.*127.0.0.1:$NAMED_PORT" "$TEST_TMP/dns.log"; then
	ok "named down: the error names the server"
	note "$(grep -m1 'event=dns.update op=add.*error' "$TEST_TMP/dns.log" | sed 's/.*error=//')"
else
	fail "named down: the error names the server" "$(grep -m3 -E 'warn|error' "$TEST_TMP/dns.log")"
fi
named_restart || bail "named restarts"
if wait_for "acmera to finish after named is back" 120 sh -c "! kill -0 $pid 2>/dev/null"; then
	wait "$pid"
	rc=$?
	[ "$rc" -eq 0 ] && ok "named down: acmera completes once named is back" ||
		fail "named down: acmera completes once named is back" "exit $rc; $(tail -n 5 "$TEST_TMP/dns.log")"
else
	fail "named down: acmera completes once named is back" "still running"
fi
check "named down: every certificate verifies" all_issued dns 3 "$TEST_TMP/out/dns"
check "named down: no TXT record left" no_txt_left dns 3

# --- kill -9 in the middle of orders: a restart completes every job, one certificate each ---
args=$(csrs kill 10)
orders_placed()
{
	grep -c -E 'POST /order-plz -> calling handler' "$PEBBLE_LOG" || true
}
orders_before=$(orders_placed)
# shellcheck disable=SC2086
"$ACMERA_BIN" issue --config "$CONF" $args --out "$TEST_TMP/out/kill" >"$TEST_TMP/kill1.log" 2>&1 &
pid=$!
wait_for "orders in flight" 30 grep -q 'event=acme.challenge' "$TEST_TMP/kill1.log"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
active=$(store_sql "SELECT COUNT(*) FROM jobs WHERE state = 1")
orderless=$(store_sql "SELECT COUNT(*) FROM jobs WHERE state != 2 AND order_url IS NULL AND names LIKE 'kill%'")
note "killed with $active jobs active, $orderless of them without an order recorded"
# shellcheck disable=SC2086
if check "kill -9: acmera restarted completes every job" \
	"$ACMERA_BIN" issue --config "$CONF" $args --out "$TEST_TMP/out/kill"; then
	check "kill -9: every certificate verifies" all_issued kill 10 "$TEST_TMP/out/kill"
fi
check "kill -9: no TXT record left" no_txt_left kill 10
# An order recorded before the kill is resumed, never placed again: a CSR can only get a
# second order when the kill came between newOrder and recording its URL, and that first
# order is never finalized (nobody knows its URL).
placed=$(($(orders_placed) - orders_before))
if [ "$placed" -le $((10 + orderless)) ]; then
	ok "kill -9: recorded orders are resumed, not placed again ($placed newOrder for 10 CSRs)"
else
	fail "kill -9: recorded orders are resumed, not placed again" "$placed newOrder, allowed $((10 + orderless))"
fi
dups=$(store_sql "SELECT COUNT(*) FROM (SELECT csr_sha256 FROM certs GROUP BY csr_sha256 HAVING COUNT(*) > 1)")
[ "$dups" = "0" ] && ok "kill -9: no CSR has two certificates" || fail "kill -9: no CSR has two certificates" "$dups"
left=$(store_sql "SELECT COUNT(*) FROM dns_records")
[ "$left" = "0" ] && ok "the store lists no published record" || fail "the store lists no published record" "$left"

# ---- a CA that never answers ----
# A listener that accepts connections and stays silent (for at most 30 s): acmera's
# directory request waits on it. SIGTERM must end the run at once, not after the
# request's own timeout.
python3 - >"$TEST_TMP/silent.port" <<'EOF' &
import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
s.settimeout(0.5)
held, end = [], time.time() + 30
while time.time() < end:
    try:
        held.append(s.accept()[0])
    except socket.timeout:
        pass
EOF
silent_pid=$!
on_exit stop_pid "$silent_pid"
if wait_for "the silent listener has a port" 5 test -s "$TEST_TMP/silent.port"; then
	sed "s|^directory = .*|directory = https://127.0.0.1:$(cat "$TEST_TMP/silent.port")/dir|" \
		"$CONF" >"$TEST_TMP/silent.conf"
	make_csr "$TEST_TMP/csr" "silent1.$ZONE"
	"$ACMERA_BIN" issue --config "$TEST_TMP/silent.conf" \
		--csr "$TEST_TMP/csr/silent1.$ZONE.csr" --out "$TEST_TMP/out/silent.pem" \
		>"$TEST_TMP/silent.log" 2>&1 &
	issue_pid=$!
	on_exit stop_pid "$issue_pid"
	sleep 1
	t0=$(now_ms)
	kill -TERM "$issue_pid"
	wait "$issue_pid"
	rc=$?
	took=$(($(now_ms) - t0))
	[ "$took" -lt 2000 ] && [ "$rc" -ne 0 ] &&
		ok "SIGTERM while the CA does not answer: acmera issue ends at once ($took ms, status $rc)" ||
		fail "SIGTERM while the CA does not answer: acmera issue ends at once" \
			"$took ms, status $rc"
	check "SIGTERM while the CA does not answer: it says it stopped waiting" \
		grep -q "stopped before the CA answered" "$TEST_TMP/silent.log"
	check "SIGTERM while the CA does not answer: no certificate file" \
		test ! -e "$TEST_TMP/out/silent.pem"
else
	fail "the silent listener has a port" "no port printed"
fi

finish
