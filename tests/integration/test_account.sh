#!/usr/bin/env bash
# acmera account show|create|rollover|deactivate and acmera revoke against Pebble (resolving
# DNS-01 through BIND 9 named), then External Account Binding against a Pebble that requires
# it, and the refusals of bad configuration files and flags.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/named.sh"
. "$(dirname "$0")/lib/pebble.sh"
. "$(dirname "$0")/lib/acmera.sh"

need openssl dig named pebble python3 curl

ZONE=acct.test
named_start "$TEST_TMP/named" "$ZONE" || bail "named starts"
pebble_start "$TEST_TMP/pebble" || bail "pebble starts"

CONF=$TEST_TMP/acmera.conf
acmera_config "$CONF" "[issuer]" "lease = 5"
CSRS=$TEST_TMP/csr
OUT=$TEST_TMP/out
mkdir -p "$CSRS" "$OUT"

# ---- helpers ----

# expect DESC RC TEXT CMD...: ok when CMD exits with status RC and its output (stdout and
# stderr) contains TEXT (fixed string; empty TEXT matches anything).
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

# field FILE NAME: the value of a "NAME: value" line printed by `acmera account`.
field()
{
	sed -n "s/^$2: //p" "$1" | head -n 1
}

# dir_path KEY: path of a URL of Pebble's directory (newAccount, newOrder, ...).
dir_path()
{
	_pebble_curl "$ACME_DIRECTORY" | python3 -c '
import json, sys, urllib.parse
print(urllib.parse.urlparse(json.load(sys.stdin)[sys.argv[1]]).path)' "$1"
}

# posts PATH: POST requests Pebble's ACME handlers took for PATH so far.
posts()
{
	local n
	n=$(grep -c -F "POST $1 -> calling handler()" "$PEBBLE_LOG" 2>/dev/null) || true
	echo "${n:-0}"
}

# pebble_accounts: how many accounts Pebble holds (0 before the first).
pebble_accounts()
{
	sed -n 's/.*There are now \([0-9]*\) accounts in memory.*/\1/p' "$PEBBLE_LOG" | tail -n 1 |
		grep . || echo 0
}

# cert_status CERT: "Status Reason" of CERT at Pebble's management interface
# (GET /cert-status-by-serial/<serial in hex, lower case, no leading zeros>).
cert_status()
{
	local serial
	serial=$(openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//')
	_pebble_curl "$PEBBLE_MGMT/cert-status-by-serial/$serial" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d.get("Status"), d.get("Reason"))'
}

# jwk_thumbprint FILE: RFC 7638 thumbprint of the "key" member of the account JSON that
# `acmera account show` printed after its header lines (the CA's view of the key).
jwk_thumbprint()
{
	sed -n '/^{/,$p' "$1" | python3 -c '
import base64, hashlib, json, sys
k = json.load(sys.stdin)["key"]
req = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[k["kty"]]
canon = json.dumps({m: k[m] for m in req}, separators=(",", ":"), sort_keys=True)
print(base64.urlsafe_b64encode(hashlib.sha256(canon.encode()).digest()).decode().rstrip("="))'
}

# issue NAME: a P-256 CSR for NAME.ZONE and its certificate in $OUT/NAME.pem.
issue()
{
	make_csr "$CSRS" "$1.$ZONE" "$1.$ZONE" &&
		"$ACMERA_BIN" issue --config "$CONF" --csr "$CSRS/$1.$ZONE.csr" --out "$OUT/$1.pem" \
			>"$TEST_TMP/issue-$1.log" 2>&1
}

NEW_ACCOUNT=$(dir_path newAccount)
NEW_ORDER=$(dir_path newOrder)
[ -n "$NEW_ACCOUNT" ] && [ -n "$NEW_ORDER" ] || bail "Pebble's directory names newAccount and newOrder"

# ---- show before create: refused, registers nothing ----
expect "account show: without an account says so and exits 1" 1 \
	"no ACME account for $ACME_DIRECTORY in the store" \
	"$ACMERA_BIN" account show --config "$CONF"
[ "$(posts "$NEW_ACCOUNT")" = 0 ] && ok "account show: registers no account" ||
	fail "account show: registers no account" "newAccount POSTs: $(posts "$NEW_ACCOUNT")"

# ---- create, show, create again ----
if check "account create: registers the account" \
	"$ACMERA_BIN" account create --config "$CONF"; then
	cp "$TEST_TMP/.check.out" "$TEST_TMP/create1.out"
fi
URL=$(field "$TEST_TMP/create1.out" account)
TP1=$(field "$TEST_TMP/create1.out" thumbprint)
if [[ $URL == "https://127.0.0.1:$PEBBLE_PORT/"* ]] && [[ $TP1 =~ ^[A-Za-z0-9_-]{43}$ ]] &&
	[ "$(pebble_accounts)" = 1 ]; then
	ok "account create: prints the account URL and key thumbprint; Pebble holds 1 account"
else
	fail "account create: prints the account URL and key thumbprint; Pebble holds 1 account" \
		"url '$URL' thumbprint '$TP1' accounts $(pebble_accounts)"
fi
if check "account show: succeeds" "$ACMERA_BIN" account show --config "$CONF"; then
	cp "$TEST_TMP/.check.out" "$TEST_TMP/show1.out"
fi
if [ "$(field "$TEST_TMP/show1.out" account)" = "$URL" ] &&
	[ "$(field "$TEST_TMP/show1.out" thumbprint)" = "$TP1" ] &&
	grep -q '"status": *"valid"' "$TEST_TMP/show1.out"; then
	ok "account show: same URL and thumbprint, the CA says valid"
else
	fail "account show: same URL and thumbprint, the CA says valid" "$(cat "$TEST_TMP/show1.out")"
fi
check "account create: a second create succeeds" "$ACMERA_BIN" account create --config "$CONF"
if [ "$(field "$TEST_TMP/.check.out" account)" = "$URL" ] && [ "$(pebble_accounts)" = 1 ] &&
	[ "$(posts "$NEW_ACCOUNT")" = 1 ]; then
	ok "account create: a second create keeps the account (same URL, no second newAccount)"
else
	fail "account create: a second create keeps the account (same URL, no second newAccount)" \
		"url $(field "$TEST_TMP/.check.out" account) (first $URL), accounts $(pebble_accounts)," \
		"newAccount POSTs $(posts "$NEW_ACCOUNT")"
fi

# ---- a certificate under the first key ----
if issue before; then
	ok "issue: a certificate with the created account"
else
	fail "issue: a certificate with the created account" "$(tail -n 5 "$TEST_TMP/issue-before.log")"
fi

# ---- rollover ----
cp "$TEST_TMP/acmera.db" "$TEST_TMP/old-key.db"
if check "account rollover: succeeds" "$ACMERA_BIN" account rollover --config "$CONF"; then
	cp "$TEST_TMP/.check.out" "$TEST_TMP/rollover.out"
fi
if check "account show: works after rollover" "$ACMERA_BIN" account show --config "$CONF"; then
	cp "$TEST_TMP/.check.out" "$TEST_TMP/show2.out"
fi
TP2=$(field "$TEST_TMP/show2.out" thumbprint)
if [ "$(field "$TEST_TMP/show2.out" account)" = "$URL" ] && [[ $TP2 =~ ^[A-Za-z0-9_-]{43}$ ]] &&
	[ "$TP2" != "$TP1" ]; then
	ok "account rollover: same account URL, a new key thumbprint"
else
	fail "account rollover: same account URL, a new key thumbprint" \
		"url $(field "$TEST_TMP/show2.out" account) (was $URL), thumbprint $TP2 (was $TP1)"
fi
ca_tp=$(jwk_thumbprint "$TEST_TMP/show2.out" 2>/dev/null)
[ -n "$ca_tp" ] && [ "$ca_tp" = "$TP2" ] &&
	ok "account rollover: the CA holds the new key (its JWK has the new thumbprint)" ||
	fail "account rollover: the CA holds the new key (its JWK has the new thumbprint)" \
		"CA's key thumbprint '$ca_tp', stored key $TP2"
sed "s|^path = .*|path = $TEST_TMP/old-key.db|" "$CONF" >"$TEST_TMP/old-key.conf"
check_fails "account rollover: the old key no longer works at the CA" \
	"$ACMERA_BIN" account show --config "$TEST_TMP/old-key.conf"

# A rollover cut short: the new key stored as pending, then a crash. The next start
# asks the CA which key it holds and keeps that one.
# store_sql DB SQL [ARG...]: runs SQL on a store (python3's sqlite3), prints the rows.
store_sql()
{
	python3 - "$@" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for row in db.execute(sys.argv[2], sys.argv[3:]):
    print("|".join("" if v is None else str(v) for v in row))
db.commit()
EOF
}
new_key=$(store_sql "$TEST_TMP/acmera.db" "SELECT key_pem FROM accounts")
old_key=$(store_sql "$TEST_TMP/old-key.db" "SELECT key_pem FROM accounts")
[ "$(store_sql "$TEST_TMP/acmera.db" "SELECT next_key_pem IS NULL FROM accounts")" = 1 ] &&
	ok "account rollover: no key is left pending once the CA took the new one" ||
	fail "account rollover: no key is left pending once the CA took the new one" "still pending"
# settled NAME WHAT: the account loaded from store NAME.db uses the key the CA holds
# (the new one, thumbprint TP2), and the store keeps that key alone.
settled()
{
	local got
	sed "s|^path = .*|path = $TEST_TMP/$1.db|" "$CONF" >"$TEST_TMP/$1.conf"
	expect "$2: the next start uses the key the CA holds" 0 "thumbprint: $TP2" \
		"$ACMERA_BIN" account show --config "$TEST_TMP/$1.conf"
	got=$(store_sql "$TEST_TMP/$1.db" \
		"SELECT rtrim(key_pem, char(10)) = ?, next_key_pem IS NULL FROM accounts" "$new_key")
	[ "$got" = "1|1" ] && ok "$2: the store keeps that key alone" ||
		fail "$2: the store keeps that key alone" "key is the CA's|none pending: $got"
}
# 1. The CA took the new key; the store still names the old one, the new one pending.
cp "$TEST_TMP/old-key.db" "$TEST_TMP/cut-after.db"
store_sql "$TEST_TMP/cut-after.db" "UPDATE accounts SET next_key_pem = ?" "$new_key"
settled cut-after "rollover cut short after the CA took the new key"
# 2. The crash came before the CA heard of the pending key: it still holds the current one.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TEST_TMP/never-sent.pem" \
	2>/dev/null
cp "$TEST_TMP/acmera.db" "$TEST_TMP/cut-before.db"
store_sql "$TEST_TMP/cut-before.db" "UPDATE accounts SET next_key_pem = ?" \
	"$(cat "$TEST_TMP/never-sent.pem")"
settled cut-before "rollover cut short before the CA heard of it"
[ "$old_key" != "$new_key" ] && [ -n "$old_key" ] &&
	ok "rollover: the stores before and after hold different keys" ||
	fail "rollover: the stores before and after hold different keys" "empty or equal"
if issue after; then
	ok "issue: still obtains a certificate after rollover"
	check "issue: the certificate after rollover verifies" \
		verify_issued "$OUT/after.pem" "$CSRS/after.$ZONE.csr"
else
	fail "issue: still obtains a certificate after rollover" "$(tail -n 5 "$TEST_TMP/issue-after.log")"
fi
if expect "account rollover --key-type p384: the account now signs with ES384" 0 "algorithm: ES384" \
	"$ACMERA_BIN" account rollover --config "$CONF" --key-type p384; then
	expect "account show: ES384 key after the second rollover, same URL" 0 "account: $URL" \
		"$ACMERA_BIN" account show --config "$CONF"
fi
[ "$(pebble_accounts)" = 1 ] && ok "account rollover: Pebble still holds exactly 1 account" ||
	fail "account rollover: Pebble still holds exactly 1 account" "$(pebble_accounts)"

# ---- revoke ----
if [ -s "$OUT/before.pem" ]; then
	st=$(cert_status "$OUT/before.pem")
	[[ $st == "Valid "* ]] && ok "revoke: Pebble reports the certificate valid at first" ||
		fail "revoke: Pebble reports the certificate valid at first" "status: $st"
	expect "revoke: --reason 2 (cACompromise) is a usage error" 2 "--reason: '2' is not" \
		"$ACMERA_BIN" revoke --config "$CONF" --cert "$OUT/before.pem" --reason 2
	expect "revoke: --reason abc is a usage error" 2 "--reason: 'abc' is not" \
		"$ACMERA_BIN" revoke --config "$CONF" --cert "$OUT/before.pem" --reason abc
	expect "revoke: no --cert is a usage error" 2 "usage: acmera revoke" \
		"$ACMERA_BIN" revoke --config "$CONF" --reason 4
	st=$(cert_status "$OUT/before.pem")
	[[ $st == "Valid "* ]] && ok "revoke: usage errors revoke nothing" ||
		fail "revoke: usage errors revoke nothing" "status: $st"
	# Issued under the first key: the account, not the key, owns it.
	expect "revoke --reason 4: revokes a certificate of the account" 0 "revoked $OUT/before.pem" \
		"$ACMERA_BIN" revoke --config "$CONF" --cert "$OUT/before.pem" --reason 4
	st=$(cert_status "$OUT/before.pem")
	[ "$st" = "Revoked 4" ] && ok "revoke: Pebble reports it revoked with reason 4 (superseded)" ||
		fail "revoke: Pebble reports it revoked with reason 4 (superseded)" "status: $st"
	expect "revoke: a second revocation reports the CA's alreadyRevoked" 1 "alreadyRevoked" \
		"$ACMERA_BIN" revoke --config "$CONF" --cert "$OUT/before.pem" --reason 4
	# The same CSR again: the revoked certificate must not come back from the store.
	if "$ACMERA_BIN" issue --config "$CONF" --csr "$CSRS/before.$ZONE.csr" --out "$OUT/reissued.pem" \
		>"$TEST_TMP/reissue.log" 2>&1; then
		if ! cmp -s "$OUT/before.pem" "$OUT/reissued.pem" &&
			[[ $(cert_status "$OUT/reissued.pem") == "Valid "* ]]; then
			ok "revoke: the same CSR afterwards gets a new, valid certificate"
		else
			fail "revoke: the same CSR afterwards gets a new, valid certificate" "the revoked one came back"
		fi
	else
		fail "revoke: the same CSR afterwards gets a new, valid certificate" "$(tail -n 5 "$TEST_TMP/reissue.log")"
	fi
fi
if [ -s "$OUT/after.pem" ]; then
	expect "revoke: without --reason revokes with reason 0" 0 "(reason 0)" \
		"$ACMERA_BIN" revoke --config "$CONF" --cert "$OUT/after.pem"
	st=$(cert_status "$OUT/after.pem")
	[ "$st" = "Revoked 0" ] && ok "revoke: Pebble reports reason 0 (unspecified)" ||
		fail "revoke: Pebble reports reason 0 (unspecified)" "status: $st"
fi
expect "revoke: a missing certificate file is named" 1 "$TEST_TMP/none.pem: No such file" \
	"$ACMERA_BIN" revoke --config "$CONF" --cert "$TEST_TMP/none.pem"
expect "revoke: a file without a certificate is named" 1 "$CSRS/after.$ZONE.key: no PEM certificate" \
	"$ACMERA_BIN" revoke --config "$CONF" --cert "$CSRS/after.$ZONE.key"

# ---- configuration errors (exit 1, FILE:LINE) and bad flags (exit 2) ----
BAD=$TEST_TMP/bad.conf
cp "$CONF" "$BAD"
printf '[acme]\nbogus = 1\n' >>"$BAD"
line=$(wc -l <"$BAD")
for cmd in "account show" "account create" "revoke --cert $OUT/before.pem" \
	"issue --csr $CSRS/after.$ZONE.csr --out $OUT/x.pem"; do
	# shellcheck disable=SC2086
	expect "config: ${cmd%% -*}: an unknown key is FILE:LINE, exit 1" 1 \
		"$BAD:$line: unknown key 'bogus' in section [acme]" "$ACMERA_BIN" $cmd --config "$BAD"
done
expect "config: a missing --config file is named, exit 1" 1 \
	"$TEST_TMP/missing.conf: cannot open: No such file or directory" \
	"$ACMERA_BIN" account show --config "$TEST_TMP/missing.conf"
expect "config: a bad value names file, line and key, exit 1" 1 \
	"$TEST_TMP/badval.conf:2: [acme] timeout: 'soon' is not a number" \
	sh -c "printf '[acme]\ntimeout = soon\n' >'$TEST_TMP/badval.conf' &&
		exec '$ACMERA_BIN' account show --config '$TEST_TMP/badval.conf'"
expect "flags: an unknown flag is exit 2" 2 "unrecognized option '--bogus'" \
	"$ACMERA_BIN" account show --config "$CONF" --bogus
expect "flags: an unknown account action is named, exit 2" 2 "unknown action 'frob'" \
	"$ACMERA_BIN" account frob --config "$CONF"
expect "flags: no account action is exit 2" 2 "usage: acmera account" \
	"$ACMERA_BIN" account --config "$CONF"
expect "flags: --key-type dsa is exit 2" 2 "--key-type: unknown key type 'dsa'" \
	"$ACMERA_BIN" account rollover --config "$CONF" --key-type dsa
expect "flags: --log-level loud is exit 2" 2 "--log-level: 'loud' is not" \
	"$ACMERA_BIN" account show --config "$CONF" --log-level loud
expect "flags: revoke --cert without its argument is exit 2" 2 "" \
	"$ACMERA_BIN" revoke --config "$CONF" --cert
expect "flags: an unknown command is exit 2" 2 "unknown command 'acount'" \
	"$ACMERA_BIN" acount show
check "flags: --help exits 0" "$ACMERA_BIN" account --help

# ---- deactivate ----
cp "$TEST_TMP/acmera.db" "$TEST_TMP/before-deactivate.db"
expect "account deactivate: succeeds" 0 "deactivated" \
	"$ACMERA_BIN" account deactivate --config "$CONF"
sed "s|^path = .*|path = $TEST_TMP/before-deactivate.db|" "$CONF" >"$TEST_TMP/stale.conf"
expect "account deactivate: the CA refuses the account (seen through a store copy)" 1 \
	"Account has been deactivated" "$ACMERA_BIN" account show --config "$TEST_TMP/stale.conf"
orders=$(posts "$NEW_ORDER")
make_csr "$CSRS" "late.$ZONE" "late.$ZONE"
expect "account deactivate: issue then fails saying the account is deactivated" 1 \
	"the ACME account $URL is deactivated" \
	"$ACMERA_BIN" issue --config "$CONF" --timeout 20 --csr "$CSRS/late.$ZONE.csr" --out "$OUT/late.pem"
[ "$(posts "$NEW_ORDER")" = "$orders" ] && [ ! -e "$OUT/late.pem" ] &&
	ok "account deactivate: issue sends no order and writes no certificate" ||
	fail "account deactivate: issue sends no order and writes no certificate" \
		"newOrder POSTs $orders -> $(posts "$NEW_ORDER")"
accounts=$(posts "$NEW_ACCOUNT")
expect "account deactivate: create does not silently make a new account" 1 "is deactivated" \
	"$ACMERA_BIN" account create --config "$CONF"
[ "$(posts "$NEW_ACCOUNT")" = "$accounts" ] && ok "account deactivate: no newAccount afterwards" ||
	fail "account deactivate: no newAccount afterwards"

# ---- External Account Binding: a Pebble that requires it ----
pebble_stop
PEBBLE_EAB_KID=acmera-eab-kid pebble_start "$TEST_TMP/pebble-eab" || bail "pebble with EAB starts"
NEW_ACCOUNT=$(dir_path newAccount)
EAB_KEY=$TEST_TMP/eab.key
(umask 077 && printf '%s\n' "$PEBBLE_EAB_HMAC_KEY" >"$EAB_KEY")
chmod 600 "$EAB_KEY"
cp "$EAB_KEY" "$TEST_TMP/eab-644.key"
chmod 644 "$TEST_TMP/eab-644.key"

ACMERA_STATE=$TEST_TMP/eab-none.db acmera_config "$TEST_TMP/eab-none.conf"
expect "eab: without EAB, create fails: the CA requires external account binding" 1 \
	"the CA requires external account binding: set acme eab_kid and eab_hmac_key_file" \
	"$ACMERA_BIN" account create --config "$TEST_TMP/eab-none.conf"

ACMERA_STATE=$TEST_TMP/eab-644.db acmera_config "$TEST_TMP/eab-644.conf" "[acme]" \
	"eab_kid = $PEBBLE_EAB_KID" "eab_hmac_key_file = $TEST_TMP/eab-644.key"
expect "eab: a key file of mode 0644 is refused naming the file and its mode" 1 \
	"$TEST_TMP/eab-644.key: readable by others (mode 644)" \
	"$ACMERA_BIN" account create --config "$TEST_TMP/eab-644.conf"

ACMERA_STATE=$TEST_TMP/eab-kid.db acmera_config "$TEST_TMP/eab-kid.conf" "[acme]" \
	"eab_kid = $PEBBLE_EAB_KID"
expect "eab: eab_kid without eab_hmac_key_file is refused naming both" 1 \
	"eab_kid is set but eab_hmac_key_file is not" \
	"$ACMERA_BIN" account create --config "$TEST_TMP/eab-kid.conf"

ACMERA_STATE=$TEST_TMP/eab-wrong.db acmera_config "$TEST_TMP/eab-wrong.conf" "[acme]" \
	"eab_kid = not-$PEBBLE_EAB_KID" "eab_hmac_key_file = $EAB_KEY"
expect "eab: an unknown EAB key id is refused by the CA" 1 "unauthorized" \
	"$ACMERA_BIN" account create --config "$TEST_TMP/eab-wrong.conf"
[ "$(posts "$NEW_ACCOUNT")" -ge 1 ] && [ "$(pebble_accounts)" = 0 ] &&
	ok "eab: the refusals registered no account" ||
	fail "eab: the refusals registered no account" "accounts $(pebble_accounts)"

ACMERA_STATE=$TEST_TMP/eab.db acmera_config "$TEST_TMP/eab.conf" "[acme]" \
	"eab_kid = $PEBBLE_EAB_KID" "eab_hmac_key_file = $EAB_KEY"
if expect "eab: with eab_kid and a 0600 key file, create succeeds" 0 "account: https://" \
	"$ACMERA_BIN" account create --config "$TEST_TMP/eab.conf"; then
	[ "$(pebble_accounts)" = 1 ] && ok "eab: Pebble holds the bound account" ||
		fail "eab: Pebble holds the bound account" "accounts $(pebble_accounts)"
	expect "eab: account show works" 0 '"status": "valid"' \
		"$ACMERA_BIN" account show --config "$TEST_TMP/eab.conf"
	# The key made by the failed create without EAB is used once EAB is set.
	sed "s|^path = .*|path = $TEST_TMP/eab-none.db|" "$TEST_TMP/eab.conf" >"$TEST_TMP/eab-retry.conf"
	expect "eab: a create refused for lack of EAB succeeds once EAB is configured" 0 \
		"account: https://" "$ACMERA_BIN" account create --config "$TEST_TMP/eab-retry.conf"
	CONF=$TEST_TMP/eab.conf
	if issue eab; then
		ok "eab: issue obtains a certificate with the bound account"
	else
		fail "eab: issue obtains a certificate with the bound account" \
			"$(tail -n 5 "$TEST_TMP/issue-eab.log")"
	fi
fi

finish
