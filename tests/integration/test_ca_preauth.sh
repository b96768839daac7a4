#!/usr/bin/env bash
# The draft's optimised flow against `acmera ca`: the issuer pre-authorizes the parent
# iot.ZONE once (STEP 1: newAuthz with subdomainAuthAllowed, proven by one dns-01 record
# published and removed through named); after that every device certificate below it costs
# exactly 3 ACME requests (newOrder answered ready, finalize answered valid, the certificate
# POST-as-GET: no newNonce, no authorization fetch, no order poll) and no DNS UPDATE, counted
# in the CA's request log and in named's update log. A new acmera process reuses the stored
# pre-authorization; a name outside the parent still gets its certificate per name; and
# `acmera serve` answers EST enrollments of IDevID devices at the same 3 requests each.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/named.sh"
. "$(dirname "$0")/lib/acmeca.sh"
. "$(dirname "$0")/lib/acmera.sh"
. "$(dirname "$0")/lib/est.sh"

need openssl dig named curl sqlite3

ZONE=preauth.test
PARENT=iot.$ZONE
K=10
named_start "$TEST_TMP/named" "$ZONE" || bail "named starts"
on_exit named_stop
acmeca_start "$TEST_TMP/ca" || bail "acmera ca starts"

CONF=$TEST_TMP/acmera.conf
acmera_config "$CONF" "[acme]" "preauthorize = $PARENT" "[issuer]" "lease = 5"
CSRS=$TEST_TMP/csr
OUT=$TEST_TMP/out
mkdir -p "$CSRS" "$OUT"

# ca_log_since N: the CA's request lines after the first N.
ca_log_since()
{
	grep 'event=ca.request ' "$ACMECA_LOG" | tail -n +"$(($1 + 1))"
}

# count_path N REGEX: requests after the first N whose method and path match REGEX.
count_path()
{
	local n
	n=$(ca_log_since "$1" | grep -cE " method=[A-Z]+ path=$2 ") || true
	echo "${n:-0}"
}

# expect_eq DESC GOT WANT [DETAIL]
expect_eq()
{
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		fail "$1" "got $2, expected $3${4:+; $4}"
	fi
}

# request_mix N: "path:count ..." of the requests after the first N, for diagnostics.
request_mix()
{
	ca_log_since "$1" | sed -n 's/.* method=\([A-Z]*\) path=\/\([a-z-]*\).*/\1 \/\2/p' |
		sort | uniq -c | awk '{printf "%s %s:%s  ", $2, $3, $1}'
}

# --- first run: pre-authorization of the parent, then one device ---
make_csr "$CSRS" "d0.$PARENT"
r0=$(acmeca_count_requests)
u0=$(named_count_updates)
check "first run: d0.$PARENT is issued after pre-authorizing $PARENT" \
	"$ACMERA_BIN" issue --config "$CONF" --csr "$CSRS/d0.$PARENT.csr" --out "$OUT/d0.pem"
check "first run: d0 chains to acmera ca's root with the CSR's names and key" \
	verify_issued "$OUT/d0.pem" "$CSRS/d0.$PARENT.csr"
expect_eq "first run: one newAuthz" "$(count_path "$r0" /new-authz)" 1 "$(request_mix "$r0")"
expect_eq "first run: one dns-01 challenge (the parent's)" "$(count_path "$r0" '/chall/[^ ]+')" 1
expect_eq "first run: 2 DNS UPDATEs (add and delete of the parent's record)" \
	$(($(named_count_updates) - u0)) 2
subdomains=$(sqlite3 "$TEST_TMP/acmera.db" \
	"SELECT subdomains FROM authzs WHERE domain = '$PARENT' AND status = 'valid';" 2>&1)
expect_eq "first run: the stored authorization of $PARENT allows subdomains (RFC 9444)" \
	"$subdomains" 1
if [ -z "$(zone_challenge_txt)" ]; then
	ok "first run: no _acme-challenge record left in the zone"
else
	fail "first run: no _acme-challenge record left in the zone" "$(zone_challenge_txt)"
fi

# --- a new process, K devices below the parent: 3 requests each, no UPDATE ---
args=()
for i in $(seq 1 "$K"); do
	make_csr "$CSRS" "d$i.$PARENT"
	args+=(--csr "$CSRS/d$i.$PARENT.csr")
done
r1=$(acmeca_count_requests)
u1=$(named_count_updates)
if check "devices: $K CSRs below $PARENT in one run" \
	"$ACMERA_BIN" issue --config "$CONF" "${args[@]}" --out "$OUT/batch"; then
	bad=""
	for i in $(seq 1 "$K"); do
		verify_issued "$OUT/batch/d$i.$PARENT.pem" "$CSRS/d$i.$PARENT.csr" >/dev/null ||
			bad="$bad d$i"
	done
	[ -z "$bad" ] && ok "devices: every certificate verifies to acmera ca's root" ||
		fail "devices: every certificate verifies to acmera ca's root" "bad:$bad"
fi
mix=$(request_mix "$r1")
total=$(($(acmeca_count_requests) - r1))
dir=$(count_path "$r1" /dir)
expect_eq "devices: the new process fetched the directory once" "$dir" 1 "$mix"
expect_eq "devices: exactly 3 x $K = $((3 * K)) ACME requests for the certificates" \
	$((total - dir)) $((3 * K)) "$mix"
expect_eq "devices: $K newOrder, $K finalize, $K certificate downloads" \
	"$(count_path "$r1" /new-order) $(count_path "$r1" '/order/[^ ]+/finalize') $(count_path "$r1" '/cert/[^ ]+')" \
	"$K $K $K" "$mix"
expect_eq "devices: the stored pre-authorization is reused (no newAuthz, no newAccount)" \
	"$(count_path "$r1" /new-authz) $(count_path "$r1" /new-account)" "0 0" "$mix"
expect_eq "devices: no newNonce, no authorization fetch, no challenge" \
	"$(count_path "$r1" /new-nonce) $(count_path "$r1" '/authz/[^ ]+') $(count_path "$r1" '/chall/[^ ]+')" \
	"0 0 0" "$mix"
expect_eq "devices: 0 DNS UPDATEs" $(($(named_count_updates) - u1)) 0
note "devices: $K certificates, $total ACME requests ($mix)"

# --- a name outside the parent: the per-name dns-01 flow ---
make_csr "$CSRS" "other.$ZONE"
r2=$(acmeca_count_requests)
u2=$(named_count_updates)
if check "outside the parent: other.$ZONE is issued" \
	"$ACMERA_BIN" issue --config "$CONF" --csr "$CSRS/other.$ZONE.csr" --out "$OUT/other.pem"; then
	check "outside the parent: the certificate verifies" \
		verify_issued "$OUT/other.pem" "$CSRS/other.$ZONE.csr"
fi
mix=$(request_mix "$r2")
expect_eq "outside the parent: its own authorization and dns-01 challenge, no newAuthz" \
	"$(count_path "$r2" /new-authz) $(count_path "$r2" '/chall/[^ ]+')" "0 1" "$mix"
updates=$(($(named_count_updates) - u2))
expect_eq "outside the parent: 2 DNS UPDATEs (add, delete)" "$updates" 2

# --- a parent the CA refuses: logged, and jobs go on per name ---
CONF2=$TEST_TMP/acmera-refused.conf
acmera_config "$CONF2" "[acme]" "preauthorize = iot.elsewhere.test" "[issuer]" "lease = 5"
make_csr "$CSRS" "late.$ZONE"
if "$ACMERA_BIN" issue --config "$CONF2" --csr "$CSRS/late.$ZONE.csr" --out "$OUT/late.pem" \
	>"$TEST_TMP/late.log" 2>&1; then
	ok "refused parent: late.$ZONE is still issued"
	check "refused parent: the certificate verifies" \
		verify_issued "$OUT/late.pem" "$CSRS/late.$ZONE.csr"
else
	fail "refused parent: late.$ZONE is still issued" "$(tail -n 5 "$TEST_TMP/late.log")"
fi
if grep -q 'event=acme.preauthorize domain=iot.elsewhere.test error=' "$TEST_TMP/late.log"; then
	ok "refused parent: the failed pre-authorization is logged"
else
	fail "refused parent: the failed pre-authorization is logged" "$(tail -n 5 "$TEST_TMP/late.log")"
fi

# --- acmera serve: EST enrollments of IDevID devices below the parent ---
# (est_start serves acmera ca's root and intermediate on /cacerts.)
ACMERA_STATE=$TEST_TMP/acmera.db est_start "$TEST_TMP/est" "{user}.$ZONE" \
	"wait = 10000" "[acme]" "preauthorize = $PARENT" || bail "acmera serve starts"

# idevid DIR SN: an IDevID for serial number SN signed by est_start's IDevID CA.
idevid()
{
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj "/serialNumber=$2/CN=sensor" -keyout "$1/$2.idevid.key" \
		-out "$1/$2.idevid.csr" 2>/dev/null &&
		openssl x509 -req -in "$1/$2.idevid.csr" -CA "$IDEVID_CA" \
			-CAkey "$EST_DIR/idevid-ca.key" -CAcreateserial -days 1 \
			-out "$1/$2.idevid.pem" 2>/dev/null
}

# est_enroll SN: enrolls sn<SN>.iot.ZONE with its IDevID; the certificate in $OUT/est-SN.pem.
est_enroll()
{
	local sn=$1 name code i
	name=$(echo "$sn" | tr 'A-Z' 'a-z').$PARENT
	make_csr "$CSRS" "$name" || return 1
	openssl req -in "$CSRS/$name.csr" -outform DER | openssl base64 >"$CSRS/$name.b64"
	for ((i = 0; i < 5; i++)); do
		code=$(curl -sS -o "$OUT/est-$sn.p7" -w '%{http_code}' --max-time 30 \
			--cacert "$EST_CA" --cert "$CSRS/$sn.idevid.pem" --key "$CSRS/$sn.idevid.key" \
			-H 'Content-Type: application/pkcs10' --data-binary "@$CSRS/$name.b64" \
			"$EST_URL/.well-known/est/iot/simpleenroll")
		[ "$code" = 202 ] || break
		sleep 1
	done
	[ "$code" = 200 ] || { echo "simpleenroll: HTTP $code"; return 1; }
	openssl base64 -d -in "$OUT/est-$sn.p7" | openssl pkcs7 -inform DER -print_certs \
		-out "$OUT/est-$sn.pem" 2>/dev/null &&
		verify_issued "$OUT/est-$sn.pem" "$CSRS/$name.csr"
}

for i in $(seq 1 "$K"); do
	idevid "$CSRS" "SN$i" || bail "IDevID SN$i"
done
# The directory was fetched when serve started: count from here.
wait_for "serve: the issuer is set up" 10 grep -q "event=issuer.mode" "$EST_LOG" || note "serve: no issuer.mode line yet"
r3=$(acmeca_count_requests)
u3=$(named_count_updates)
bad=""
for i in $(seq 1 "$K"); do
	est_enroll "SN$i" >"$TEST_TMP/est-$i.out" 2>&1 || bad="$bad SN$i($(tail -n 1 "$TEST_TMP/est-$i.out"))"
done
[ -z "$bad" ] && ok "serve: $K EST enrollments below $PARENT, each certificate verifies" ||
	fail "serve: $K EST enrollments below $PARENT, each certificate verifies" "bad:$bad"
mix=$(request_mix "$r3")
expect_eq "serve: exactly 3 x $K = $((3 * K)) ACME requests" \
	$(($(acmeca_count_requests) - r3)) $((3 * K)) "$mix"
expect_eq "serve: 0 DNS UPDATEs" $(($(named_count_updates) - u3)) 0
expect_eq "serve: the stored pre-authorization is reused (no newAuthz)" \
	"$(grep -c 'event=acme.new_authz' "$EST_LOG")" 0

finish
