#!/usr/bin/env bash
# acmera issue with its options, against Pebble (resolving DNS-01 through BIND 9 named):
# a dns.hook instead of RFC 2136, the propagation check, alternate chains
# (PEBBLE_ALTERNATE_ROOTS), wildcard names, RSA and P-384 CSRs, --state and --parallel.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/named.sh"
. "$(dirname "$0")/lib/pebble.sh"
. "$(dirname "$0")/lib/acmera.sh"

need openssl dig named nsupdate pebble sqlite3 curl

ZONE=opts.test
named_start "$TEST_TMP/named" "$ZONE" || bail "named starts"
# Two alternate chains besides the default one: roots 0 (default), 1 and 2.
pebble_start "$TEST_TMP/pebble" PEBBLE_ALTERNATE_ROOTS=2 || bail "pebble starts"

CONF=$TEST_TMP/acmera.conf
acmera_config "$CONF" "[issuer]" "lease = 5"
CSRS=$TEST_TMP/csr
OUT=$TEST_TMP/out
mkdir -p "$CSRS" "$OUT"

# ---- helpers ----

# csr TYPE BASE NAME...: key and CSR $CSRS/BASE.{key,csr} of TYPE (p256, p384, rsa2048).
csr()
{
	local type=$1 base=$2 san="" n opts
	shift 2
	for n in "$@"; do
		san="${san:+$san,}DNS:$n"
	done
	case $type in
	p256) opts=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
	p384) opts=(-newkey ec -pkeyopt ec_paramgen_curve:P-384) ;;
	rsa2048) opts=(-newkey rsa:2048) ;;
	esac
	openssl req -new "${opts[@]}" -nodes -keyout "$CSRS/$base.key" -out "$CSRS/$base.csr" \
		-subj "/CN=$1" -addext "subjectAltName=$san" 2>/dev/null
}

# issue LOG ARGS...: acmera issue ARGS with its output in $TEST_TMP/LOG.log.
issue()
{
	local log=$TEST_TMP/$1.log
	shift
	"$ACMERA_BIN" issue "$@" >"$log" 2>&1
}

# expect DESC RC TEXT CMD...: ok when CMD exits RC and its output contains TEXT (fixed).
expect()
{
	local desc=$1 want=$2 text=$3 rc=0 out="$TEST_TMP/.expect.out"
	shift 3
	"$@" >"$out" 2>&1 || rc=$?
	if [ "$rc" -eq "$want" ] && grep -qF -- "$text" "$out"; then
		ok "$desc"
		return 0
	fi
	fail "$desc" "command: $*
exit status: $rc (expected $want), expected text: $text
$(tail -n 15 "$out")"
	return 1
}

# challenge_posts: challenge responses Pebble 2.4 took (POST /chalZ/...) so far.
challenge_posts()
{
	local n
	n=$(grep -c -F "POST /chalZ/ -> calling handler()" "$PEBBLE_LOG" 2>/dev/null) || true
	echo "${n:-0}"
}

# named_added NAME / named_deleted NAME: UPDATE lines of named for TXT at NAME.
named_added()
{
	grep -F "adding an RR at '$1' TXT" "$NAMED_LOG"
}
named_deleted()
{
	grep -F "deleting an RR at $1 TXT" "$NAMED_LOG"
}

# no_txt_left DESC NAME: ok when named serves no TXT at NAME.
no_txt_left()
{
	local left
	left=$(txt_records "$2")
	[ -z "$left" ] && ok "$1" || fail "$1" "$2 still has: $left"
}

# last_cert FILE: the last certificate of a PEM chain.
last_cert()
{
	awk '/-----BEGIN CERTIFICATE-----/ { buf = "" } { buf = buf $0 "\n" }
		END { printf "%s", buf }' "$1"
}

# cn_of (subject|issuer) < PEM: the CN of the certificate's subject or issuer.
cn_of()
{
	openssl x509 -noout "-$1" -nameopt RFC2253 2>/dev/null | sed -n "s/^$1=.*CN=\([^,]*\).*/\1/p"
}

# verifies_to CERT ROOT: the chain in CERT verifies with ROOT as the only trust anchor.
verifies_to()
{
	awk 'BEGIN{n=0} /BEGIN CERT/{n++} n==1{print}' "$1" >"$TEST_TMP/v.leaf"
	awk 'BEGIN{n=0} /BEGIN CERT/{n++} n>1{print}' "$1" >"$TEST_TMP/v.chain"
	openssl verify -CAfile "$2" -untrusted "$TEST_TMP/v.chain" "$TEST_TMP/v.leaf" >/dev/null 2>&1
}

# csr_digest CSR: SHA-256 of the CSR's DER, the store's key.
csr_digest()
{
	openssl req -in "$1" -outform DER | sha256sum | cut -d' ' -f1
}

# max_concurrent LOG: most jobs claimed and not yet certified at once, from the log.
max_concurrent()
{
	awk '/event=job.claimed/ { cur++; if (cur > max) max = cur }
		/event=acme.certificate/ || /event=job.failed/ || /event=job.deferred/ { cur-- }
		END { print max + 0 }' "$1"
}

# ---- dns.hook: RFC 2136 through a command, no TSIG key in acmera's configuration ----
HOOK=$TEST_TMP/hook.sh
HOOK_CALLS=$TEST_TMP/hook.calls
: >"$HOOK_CALLS"
cat >"$HOOK" <<EOF
#!/bin/sh
# dns.hook of the test: HOOK add|delete NAME VALUE, published with nsupdate and the TSIG key.
printf '%s\n' "\$*" >>'$HOOK_CALLS'
[ \$# -eq 3 ] || { echo "expected 3 arguments, got \$#" >&2; exit 2; }
case "\$1" in
add) rr="update add \$2. 60 IN TXT \"\$3\"" ;;
delete) rr="update delete \$2. IN TXT \"\$3\"" ;;
*) echo "unknown verb \$1" >&2; exit 2 ;;
esac
printf 'server 127.0.0.1 %s\nzone %s\n%s\nsend\n' '$NAMED_PORT' '$DNS_ZONE' "\$rr" |
	nsupdate -t 5 -k '$TSIG_KEYFILE'
EOF
chmod 700 "$HOOK"

# hook_config FILE HOOK [EXTRA...]: the usual config, with dns.hook and neither dns.server
# nor dns.tsig_keyfile.
hook_config()
{
	local file=$1 hook=$2
	shift 2
	acmera_config "$file" "$@"
	sed -i -e '/^server = /d' -e '/^tsig_keyfile = /d' \
		-e "0,/^\[dns\]\$/s|^\[dns\]\$|[dns]\nhook = $hook|" "$file"
}
hook_config "$TEST_TMP/hook.conf" "$HOOK"
if grep -q '^hook = ' "$TEST_TMP/hook.conf" && ! grep -q '^tsig_keyfile' "$TEST_TMP/hook.conf" &&
	! grep -q '^server' "$TEST_TMP/hook.conf"; then
	ok "hook: configuration has dns.hook and no TSIG key or DNS server"
else
	fail "hook: configuration has dns.hook and no TSIG key or DNS server" "$(cat "$TEST_TMP/hook.conf")"
fi

csr p256 hook "hk.$ZONE" "hk.$ZONE" "www.hk.$ZONE"
if check "hook: issue obtains a certificate" \
	issue hook --config "$TEST_TMP/hook.conf" --csr "$CSRS/hook.csr" --out "$OUT/hook.pem"; then
	check "hook: the certificate verifies with the CSR's names" \
		verify_issued "$OUT/hook.pem" "$CSRS/hook.csr"
fi
for n in "hk.$ZONE" "www.hk.$ZONE"; do
	rec=_acme-challenge.$n
	adds=$(grep -c "^add $rec " "$HOOK_CALLS")
	dels=$(grep -c "^delete $rec " "$HOOK_CALLS")
	value=$(sed -n "s/^add $rec \([A-Za-z0-9_-]\{43\}\)\$/\1/p" "$HOOK_CALLS" | head -n 1)
	add_line=$(grep -n "^add $rec " "$HOOK_CALLS" | head -n 1 | cut -d: -f1)
	del_line=$(grep -n "^delete $rec $value\$" "$HOOK_CALLS" | head -n 1 | cut -d: -f1)
	if [ "$adds" = 1 ] && [ "$dels" = 1 ] && [ -n "$value" ] && [ -n "$del_line" ] &&
		[ "$add_line" -lt "$del_line" ]; then
		ok "hook: called 'add $rec VALUE' then 'delete $rec VALUE' with the same dns-01 value"
	else
		fail "hook: called 'add $rec VALUE' then 'delete $rec VALUE' with the same dns-01 value" \
			"$(cat "$HOOK_CALLS")"
	fi
	if [ -n "$value" ] && named_added "$rec" | grep -qF "\"$value\""; then
		ok "hook: named took the value the hook was given for $rec"
	else
		fail "hook: named took the value the hook was given for $rec" "$(named_added "$rec")"
	fi
	no_txt_left "hook: no TXT left at $rec" "$rec"
done
[ "$(wc -l <"$HOOK_CALLS")" = 4 ] && ok "hook: 4 calls in all (one per record and step)" ||
	fail "hook: 4 calls in all (one per record and step)" "$(cat "$HOOK_CALLS")"
grep -q 'event=dns.update op=add .*via=hook' "$TEST_TMP/hook.log" &&
	ok "hook: acmera logs the update as done via the hook" ||
	fail "hook: acmera logs the update as done via the hook" "$(grep dns.update "$TEST_TMP/hook.log")"

# A hook that fails: its exit status and first stderr line reach the user; no validation.
cat >"$TEST_TMP/hook-fail.sh" <<'EOF'
#!/bin/sh
echo "zone is read-only today" >&2
exit 3
EOF
chmod 700 "$TEST_TMP/hook-fail.sh"
# A store of its own: the job stays pending there, and an issuer works on every pending job.
ACMERA_STATE=$TEST_TMP/hook-fail.db hook_config "$TEST_TMP/hook-fail.conf" "$TEST_TMP/hook-fail.sh"
csr p256 hookfail "hf.$ZONE" "hf.$ZONE"
chal=$(challenge_posts)
expect "hook: a failing hook is reported with its exit status and stderr" 1 \
	"add _acme-challenge.hf.$ZONE: exit status 3: zone is read-only today" \
	"$ACMERA_BIN" issue --config "$TEST_TMP/hook-fail.conf" --timeout 4 \
	--csr "$CSRS/hookfail.csr" --out "$OUT/hookfail.pem"
[ "$(challenge_posts)" = "$chal" ] && [ ! -e "$OUT/hookfail.pem" ] &&
	ok "hook: after a failing hook the CA is not asked to validate" ||
	fail "hook: after a failing hook the CA is not asked to validate" \
		"challenge POSTs $chal -> $(challenge_posts)"

# ---- propagation_check ----
acmera_config "$TEST_TMP/prop.conf" "[issuer]" "lease = 5" "[dns]" "propagation_check = yes" \
	"propagation_timeout = 10"
csr p256 prop "pc.$ZONE" "pc.$ZONE"
if check "propagation_check: issue obtains a certificate" \
	issue prop --config "$TEST_TMP/prop.conf" --csr "$CSRS/prop.csr" --out "$OUT/prop.pem"; then
	check "propagation_check: the certificate verifies" verify_issued "$OUT/prop.pem" "$CSRS/prop.csr"
fi
# The check ran, and before the challenge was answered.
if awk '/event=dns.visible/ { v = NR } /event=acme.challenge/ && !c { c = NR }
	END { exit !(v && c && v < c) }' "$TEST_TMP/prop.log"; then
	ok "propagation_check: records seen on named before the CA is asked to validate"
else
	fail "propagation_check: records seen on named before the CA is asked to validate" \
		"$(grep -E 'dns\.|acme.challenge' "$TEST_TMP/prop.log")"
fi
no_txt_left "propagation_check: no TXT left" "_acme-challenge.pc.$ZONE"

# A hook that says "done" but publishes nothing: the check must notice and hold back.
cat >"$TEST_TMP/hook-lazy.sh" <<'EOF'
#!/bin/sh
exit 0
EOF
chmod 700 "$TEST_TMP/hook-lazy.sh"
ACMERA_STATE=$TEST_TMP/lazy.db hook_config "$TEST_TMP/lazy.conf" "$TEST_TMP/hook-lazy.sh" "[dns]" "propagation_check = yes" \
	"propagation_timeout = 2"
# The check asks the zone's servers, found through dns.server.
printf '[dns]\nserver = 127.0.0.1:%s\n' "$NAMED_PORT" >>"$TEST_TMP/lazy.conf"
csr p256 lazy "lz.$ZONE" "lz.$ZONE"
chal=$(challenge_posts)
expect "propagation_check: a record that never appears is reported" 1 \
	"TXT _acme-challenge.lz.$ZONE" \
	"$ACMERA_BIN" issue --config "$TEST_TMP/lazy.conf" --timeout 5 \
	--csr "$CSRS/lazy.csr" --out "$OUT/lazy.pem"
grep -qF "not visible at 127.0.0.1 port $NAMED_PORT" "$TEST_TMP/.expect.out" &&
	ok "propagation_check: the message names the server that lacks it" ||
	fail "propagation_check: the message names the server that lacks it" \
		"$(tail -n 3 "$TEST_TMP/.expect.out")"
[ "$(challenge_posts)" = "$chal" ] &&
	ok "propagation_check: the CA is not asked to validate an invisible record" ||
	fail "propagation_check: the CA is not asked to validate an invisible record" \
		"challenge POSTs $chal -> $(challenge_posts)"

# Without dns.server there is nothing to ask: refused at start rather than skipped.
ACMERA_STATE=$TEST_TMP/noserver.db hook_config "$TEST_TMP/noserver.conf" "$HOOK" "[dns]" \
	"propagation_check = yes"
: >"$HOOK_CALLS"
chal=$(challenge_posts)
expect "propagation_check: with a hook and no dns.server it is refused, naming the key" 1 \
	"dns propagation_check needs dns server" \
	"$ACMERA_BIN" issue --config "$TEST_TMP/noserver.conf" --timeout 5 \
	--csr "$CSRS/lazy.csr" --out "$OUT/noserver.pem"
[ ! -s "$HOOK_CALLS" ] && [ "$(challenge_posts)" = "$chal" ] &&
	ok "propagation_check: the refusal publishes nothing" ||
	fail "propagation_check: the refusal publishes nothing" "$(cat "$HOOK_CALLS")"

# ---- alternate chains ----
ROOT_CN=()
for i in 0 1 2; do
	_pebble_curl -o "$TEST_TMP/root$i.pem" "$PEBBLE_MGMT/roots/$i" || bail "Pebble serves root $i"
	ROOT_CN[i]=$(cn_of subject <"$TEST_TMP/root$i.pem")
done
if [ -n "${ROOT_CN[1]}" ] && [ -n "${ROOT_CN[2]}" ] && [ "${ROOT_CN[1]}" != "${ROOT_CN[0]}" ] &&
	[ "${ROOT_CN[2]}" != "${ROOT_CN[0]}" ]; then
	ok "alternate: Pebble has three distinct roots"
else
	bail "alternate: Pebble has three distinct roots" "${ROOT_CN[*]}"
fi

# alt_case DESC BASE ROOT_INDEX [alternate_chain value]
alt_case()
{
	local desc=$1 base=$2 want=$3 pref=${4:-} conf=$TEST_TMP/alt-$2.conf got
	if [ -n "$pref" ]; then
		acmera_config "$conf" "[acme]" "alternate_chain = $pref"
	else
		acmera_config "$conf"
	fi
	csr p256 "$base" "$base.$ZONE" "$base.$ZONE"
	if ! check "alternate: $desc: issue obtains a certificate" \
		issue "$base" --config "$conf" --csr "$CSRS/$base.csr" --out "$OUT/$base.pem"; then
		return
	fi
	got=$(last_cert "$OUT/$base.pem" | cn_of issuer)
	if [ "$got" = "${ROOT_CN[want]}" ] && verifies_to "$OUT/$base.pem" "$TEST_TMP/root$want.pem"; then
		ok "alternate: $desc: the written chain ends in root $want (${ROOT_CN[want]})"
	else
		fail "alternate: $desc: the written chain ends in root $want (${ROOT_CN[want]})" \
			"last issuer: $got"
	fi
	local other=$(((want + 1) % 3))
	verifies_to "$OUT/$base.pem" "$TEST_TMP/root$other.pem" &&
		fail "alternate: $desc: the chain does not verify to root $other" ||
		ok "alternate: $desc: the chain does not verify to root $other"
	sqlite3 "$TEST_TMP/acmera.db" "SELECT chain_pem FROM certs WHERE csr_sha256 = \
		'$(csr_digest "$CSRS/$base.csr")' ORDER BY id DESC LIMIT 1" >"$TEST_TMP/stored.pem"
	got=$(last_cert "$TEST_TMP/stored.pem" | cn_of issuer)
	[ "$got" = "${ROOT_CN[want]}" ] &&
		ok "alternate: $desc: the stored chain ends in root $want" ||
		fail "alternate: $desc: the stored chain ends in root $want" "last issuer: $got"
}
alt_case "default" altdef 0
alt_case "alternate_chain = root 2's CN" alt2 2 "${ROOT_CN[2]}"
alt_case "alternate_chain = root 1's CN" alt1 1 "${ROOT_CN[1]}"
alt_case "alternate_chain matching none" altnone 0 "No Such Root CA"
grep -q 'event=acme.alternate_chain .*result=none_matched using=default' "$TEST_TMP/altnone.log" &&
	ok "alternate: no match is logged and the default chain kept" ||
	fail "alternate: no match is logged and the default chain kept" \
		"$(grep alternate "$TEST_TMP/altnone.log")"

# ---- wildcard names (dns-01 at _acme-challenge of the base name) ----
csr p256 wild "*.w.$ZONE" "*.w.$ZONE"
if check "wildcard: *.w.$ZONE issues" \
	issue wild --config "$CONF" --csr "$CSRS/wild.csr" --out "$OUT/wild.pem"; then
	check "wildcard: the certificate carries *.w.$ZONE and the CSR's key" \
		verify_issued "$OUT/wild.pem" "$CSRS/wild.csr"
fi
if [ "$(named_added "_acme-challenge.w.$ZONE" | wc -l)" = 1 ] &&
	[ "$(named_deleted "_acme-challenge.w.$ZONE" | wc -l)" = 1 ]; then
	ok "wildcard: one TXT added and deleted at _acme-challenge.w.$ZONE"
else
	fail "wildcard: one TXT added and deleted at _acme-challenge.w.$ZONE" \
		"$(grep -F "_acme-challenge" "$NAMED_LOG" | grep -F ".w.$ZONE" | tail -n 4)"
fi
no_txt_left "wildcard: no TXT left at _acme-challenge.w.$ZONE" "_acme-challenge.w.$ZONE"
[ -z "$(named_added "_acme-challenge.*.w.$ZONE")" ] &&
	ok "wildcard: nothing published at a name with a '*' label" ||
	fail "wildcard: nothing published at a name with a '*' label"

# The base name and its wildcard: two values in one RRset, both validated, both removed.
csr p256 wild2 "w2.$ZONE" "w2.$ZONE" "*.w2.$ZONE"
if check "wildcard: w2.$ZONE with *.w2.$ZONE issues" \
	issue wild2 --config "$CONF" --csr "$CSRS/wild2.csr" --out "$OUT/wild2.pem"; then
	check "wildcard: the certificate carries both names" \
		verify_issued "$OUT/wild2.pem" "$CSRS/wild2.csr"
fi
values=$(named_added "_acme-challenge.w2.$ZONE" | sed 's/.* TXT "\(.*\)"$/\1/' | sort -u | wc -l)
[ "$values" = 2 ] && ok "wildcard: two distinct values published at _acme-challenge.w2.$ZONE" ||
	fail "wildcard: two distinct values published at _acme-challenge.w2.$ZONE" "$values values"
no_txt_left "wildcard: neither value left behind" "_acme-challenge.w2.$ZONE"

# ---- key types of the CSR ----
csr rsa2048 rsa "rsa.$ZONE" "rsa.$ZONE"
if check "keys: an RSA 2048 CSR issues" \
	issue rsa --config "$CONF" --csr "$CSRS/rsa.csr" --out "$OUT/rsa.pem"; then
	check "keys: the RSA certificate carries the CSR's key" verify_issued "$OUT/rsa.pem" "$CSRS/rsa.csr"
	openssl x509 -in "$OUT/rsa.pem" -noout -text | grep -q 'Public-Key: (2048 bit)' &&
		ok "keys: the leaf has a 2048-bit RSA key" || fail "keys: the leaf has a 2048-bit RSA key"
fi
csr p384 p384 "p384.$ZONE" "p384.$ZONE"
if check "keys: a P-384 CSR issues" \
	issue p384 --config "$CONF" --csr "$CSRS/p384.csr" --out "$OUT/p384.pem"; then
	check "keys: the P-384 certificate carries the CSR's key" \
		verify_issued "$OUT/p384.pem" "$CSRS/p384.csr"
	openssl x509 -in "$OUT/p384.pem" -noout -text | grep -q 'NIST CURVE: P-384' &&
		ok "keys: the leaf has a P-384 key" || fail "keys: the leaf has a P-384 key"
fi

# ---- --state and --parallel ----
OTHER=$TEST_TMP/other.db
args=()
for i in 1 2 3; do
	csr p256 "par$i" "par$i.$ZONE" "par$i.$ZONE"
	args+=(--csr "$CSRS/par$i.csr")
done
if check "parallel: --parallel 1 --state FILE issues 3 CSRs" \
	issue par1 --config "$CONF" --parallel 1 --state "$OTHER" "${args[@]}" --out "$OUT/par"; then
	bad=""
	for i in 1 2 3; do
		verify_issued "$OUT/par/par$i.pem" "$CSRS/par$i.csr" >/dev/null || bad="$bad par$i"
	done
	[ -z "$bad" ] && ok "parallel: the 3 certificates verify" ||
		fail "parallel: the 3 certificates verify" "bad:$bad"
fi
n=$(max_concurrent "$TEST_TMP/par1.log")
[ "$n" = 1 ] && ok "parallel: with --parallel 1 one job at a time" ||
	fail "parallel: with --parallel 1 one job at a time" "at most $n at once"
in_other=0
in_conf=0
for i in 1 2 3; do
	d=$(csr_digest "$CSRS/par$i.csr")
	in_other=$((in_other + $(sqlite3 "$OTHER" "SELECT COUNT(*) FROM certs WHERE csr_sha256 = '$d'")))
	in_conf=$((in_conf + $(sqlite3 "$TEST_TMP/acmera.db" "SELECT COUNT(*) FROM jobs WHERE csr_sha256 = '$d'")))
done
[ "$in_other" = 3 ] && [ "$in_conf" = 0 ] &&
	ok "state: --state overrides [store] path (3 certificates there, none in the configured store)" ||
	fail "state: --state overrides [store] path (3 certificates there, none in the configured store)" \
		"--state store: $in_other certificates; configured store: $in_conf jobs"
# The control: the same batch size without the limit runs at once.
args=()
for i in 4 5 6; do
	csr p256 "par$i" "par$i.$ZONE" "par$i.$ZONE"
	args+=(--csr "$CSRS/par$i.csr")
done
if check "parallel: without --parallel 1, 3 CSRs issue" \
	issue par3 --config "$CONF" "${args[@]}" --out "$OUT/par3"; then
	n=$(max_concurrent "$TEST_TMP/par3.log")
	[ "$n" = 3 ] && ok "parallel: by default the 3 jobs run at once" ||
		fail "parallel: by default the 3 jobs run at once" "at most $n at once"
fi

# ---- DNS work off the issuer's loop ----
# The hook sleeps 4 s before each add and reads the lease of the active jobs from the
# store just before and just after. With lease = 3 the loop renews leases every second:
# when the DNS work runs on a worker thread the lease moves on during the sleep (by 3 or
# 4 s; at least 2 even with renewals a second late), while a loop blocked in the hook (as
# it was before the worker) renews nothing until the hook returns: the lease stays put.
SLOW_DB=$TEST_TMP/slow.db
LEASES=$TEST_TMP/slow.leases
: >"$LEASES"
cat >"$TEST_TMP/hook-slow.sh" <<HOOKEOF
#!/bin/sh
lease() {
	sqlite3 -cmd '.timeout 2000' '$SLOW_DB' \
		'SELECT COALESCE(MAX(lease_until), 0) FROM jobs WHERE state = 1'
}
if [ "\$1" = add ]; then
	before=\$(lease)
	sleep 4
	echo "\$before \$(lease)" >>'$LEASES'
fi
exec '$HOOK' "\$@"
HOOKEOF
chmod 700 "$TEST_TMP/hook-slow.sh"
ACMERA_STATE=$SLOW_DB hook_config "$TEST_TMP/slow.conf" "$TEST_TMP/hook-slow.sh" \
	"[issuer]" "lease = 3"
csr p256 slow1 "slow1.$ZONE" "slow1.$ZONE"
csr p256 slow2 "slow2.$ZONE" "slow2.$ZONE"
if check "dns worker: 2 CSRs issue through a hook that sleeps 4 s per add" \
	issue slow --config "$TEST_TMP/slow.conf" --timeout 120 --csr "$CSRS/slow1.csr" \
	--csr "$CSRS/slow2.csr" --out "$OUT/slow"; then
	check "dns worker: the certificates verify" \
		verify_issued "$OUT/slow/slow2.pem" "$CSRS/slow2.csr"
fi
if [ "$(wc -l <"$LEASES")" -ge 2 ] &&
	awk '$1 <= 0 || $2 - $1 < 2 { bad = 1 } END { exit bad }' "$LEASES"; then
	ok "dns worker: leases renewed while the hook slept (before/after: $(tr '\n' ' ' <"$LEASES"))"
else
	fail "dns worker: leases renewed while the hook slept" \
		"lease_until before and after each sleeping add: $(cat "$LEASES")"
fi
for n in slow1 slow2; do
	no_txt_left "dns worker: no TXT left at _acme-challenge.$n.$ZONE" "_acme-challenge.$n.$ZONE"
done

finish
