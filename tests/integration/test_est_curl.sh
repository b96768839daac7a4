#!/usr/bin/env bash
# `acmera serve` as an EST RA (RFC 7030) driven by curl and openssl as an independent client,
# in the manner of RFC 7030's examples: /cacerts, /csrattrs, /simpleenroll with HTTP Basic,
# 202 + Retry-After and retries, one ACME order for a CSR posted 20 times at once, a restart
# between a 202 and the retry, held requests answered as soon as their job finishes, the
# IDevID profile "iot" with /simplereenroll, refusals (with their status, a reason, and no ACME
# traffic), keep-alive, TLS 1.2 and 1.3, and that a certificate past its notAfter is never
# served. Peers: BIND 9 named and Pebble on loopback.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/named.sh"
. "$(dirname "$0")/lib/pebble.sh"
. "$(dirname "$0")/lib/acmera.sh"
. "$(dirname "$0")/lib/est.sh"

need openssl curl dig named pebble python3

ZONE=est.test
W=$TEST_TMP/w
CSRS=$TEST_TMP/csr
mkdir -p "$W" "$CSRS"

named_start "$TEST_TMP/named" "$ZONE" || bail "named starts"
pebble_start "$TEST_TMP/pebble" || bail "pebble starts"
est_start "$TEST_TMP/est" "{user}.$ZONE" "wait = 300" "retry_after = 1" "max_body = 4096" ||
	bail "acmera serve starts"
USER_NAME=$EST_USER.$ZONE
EST=/.well-known/est

# Operators tell the threads apart in ps -L, top -H and perf (acmera-serve(1), THREADS).
check "the serve threads are named after their work" \
	bash -c 'names=$(cat /proc/'"$EST_PID"'/task/*/comm | sort | tr "\n" " ")
	for t in acmera-http acmera-issuer acmera-dns; do
		case " $names" in *" $t "*) ;; *) echo "no thread $t among: $names"; exit 1 ;; esac
	done'

# HTTP Basic credentials in a curl config file, not in argv.
BASIC=$W/basic.curlrc
(umask 077 && printf 'user = "%s:%s"\n' "$EST_USER" "$EST_PASS" >"$BASIC")
WRONG=$W/wrong.curlrc
(umask 077 && printf 'user = "%s:%s"\n' "$EST_USER" "not-$EST_PASS" >"$WRONG")

# ---- helpers ----

# req NAME PATH [CURL ARGS...]: one bounded request; prints the status (000: no answer).
# Headers go to $W/NAME.hdr, the body to $W/NAME.body, curl's errors to $W/NAME.err.
req()
{
	local name=$1 path=$2
	shift 2
	curl -sS --max-time 15 --noproxy '*' --cacert "$EST_CA" -D "$W/$name.hdr" \
		-o "$W/$name.body" -w '%{http_code}' "$@" "$EST_URL$path" 2>"$W/$name.err"
}

# post NAME PATH BODYFILE [CURL ARGS...]: POST BODYFILE as application/pkcs10.
post()
{
	local name=$1 path=$2 body=$3
	shift 3
	req "$name" "$path" -H 'Content-Type: application/pkcs10' --data-binary "@$body" "$@"
}

# hdr FILE NAME: the value of header NAME in the last response of FILE.
hdr()
{
	tr -d '\r' <"$1" | awk -v k="$2" '
		/^HTTP\// { delete v }
		{ i = index($0, ":"); if (i) v[tolower(substr($0, 1, i - 1))] = substr($0, i + 1) }
		END { print v[tolower(k)] }' | sed 's/^[ \t]*//'
}

# new_csr BASE CN [SAN...]: P-256 key BASE.key and CSR BASE.csr (PEM) and BASE.der.
new_csr()
{
	local base=$1 cn=$2 san="" n
	shift 2
	for n in "$@"; do
		san="${san:+$san,}DNS:$n"
	done
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$base.key" \
		-out "$base.csr" -subj "/CN=$cn" ${san:+-addext "subjectAltName=$san"} 2>/dev/null &&
		openssl req -in "$base.csr" -outform DER -out "$base.der"
}

# b64_lines DER OUT: base64 in 64-character lines (openssl base64), final newline.
b64_lines() { openssl base64 -in "$1" -out "$2"; }
# b64_oneline DER OUT: one line, no final newline.
b64_oneline() { printf '%s' "$(openssl base64 -A -in "$1")" >"$2"; }
# b64_crlf DER OUT: 64-character lines ending in CRLF.
b64_crlf() { openssl base64 -in "$1" | sed 's/$/\r/' >"$2"; }

# p7_pem BODY OUT: the certificates of a base64 PKCS#7 certs-only body, as PEM.
p7_pem()
{
	openssl base64 -d -in "$1" | openssl pkcs7 -inform DER -print_certs 2>/dev/null |
		sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' >"$2" && [ -s "$2" ]
}

# fingerprints PEM: sorted SHA-256 fingerprints of every certificate in PEM.
fingerprints()
{
	local d c
	d=$(mktemp -d "$TEST_TMP/fp.XXXXXX")
	awk -v d="$d" '/-----BEGIN CERTIFICATE-----/{n++; f = d "/" n ".pem"} n {print >f}' "$1"
	for c in "$d"/*.pem; do
		[ -e "$c" ] && openssl x509 -in "$c" -noout -fingerprint -sha256
	done | sort
	rm -rf "$d"
}

# leaf_fp PEM: the SHA-256 fingerprint of the first certificate.
leaf_fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 2>/dev/null; }

# enroll NAME PATH BODY TRIES [CURL ARGS...]: POST until 200 (at most TRIES answers),
# sleeping each 202's Retry-After. Prints the statuses seen ("202 202 200"); the last answer
# is in $W/NAME.*, and $W/NAME.noretry lists 202s that came without a numeric Retry-After.
enroll()
{
	local name=$1 path=$2 body=$3 tries=$4 code ra seen="" i
	shift 4
	: >"$W/$name.noretry"
	for ((i = 0; i < tries; i++)); do
		code=$(post "$name" "$path" "$body" "$@")
		seen="${seen:+$seen }$code"
		[ "$code" = 202 ] || break
		ra=$(hdr "$W/$name.hdr" Retry-After)
		if ! [[ $ra =~ ^[0-9]+$ ]]; then
			echo "202 #$i: Retry-After '$ra'" >>"$W/$name.noretry"
			ra=1
		fi
		[ "$ra" -gt 5 ] && ra=5
		sleep "$ra"
	done
	printf '%s\n' "$seen"
}

# check_enrolled DESC NAME SEEN CSR: SEEN ended in 200 with a PKCS#7 whose leaf has exactly
# the CSR's key and names and chains to Pebble's root; each 202 carried Retry-After.
check_enrolled()
{
	local desc=$1 name=$2 seen=$3 csr=$4 ct why
	ct=$(hdr "$W/$name.hdr" Content-Type)
	if [ "${seen##* }" != 200 ]; then
		fail "$desc" "statuses: $seen; body: $(head -c 300 "$W/$name.body" 2>/dev/null)"
		return 1
	fi
	if [ -s "$W/$name.noretry" ]; then
		fail "$desc" "a 202 without Retry-After: $(cat "$W/$name.noretry")"
		return 1
	fi
	if [[ $ct != application/pkcs7-mime* ]]; then
		fail "$desc" "Content-Type: $ct"
		return 1
	fi
	if ! p7_pem "$W/$name.body" "$W/$name.pem"; then
		fail "$desc" "the body is not base64 of a PKCS#7"
		return 1
	fi
	if ! why=$(verify_issued "$W/$name.pem" "$csr"); then
		fail "$desc" "$why"
		return 1
	fi
	ok "$desc (statuses: $seen)"
}

# orders: newOrder requests Pebble handled so far.
orders()
{
	local n
	n=$(grep -c 'POST /order-plz -> calling handler' "$PEBBLE_LOG" 2>/dev/null) || true
	echo "${n:-0}"
}

# orders_above N: Pebble has handled more than N newOrder requests.
orders_above() { [ "$(orders)" -gt "$1" ]; }

# answer_lags: for the log lines on stdin, the milliseconds from the last certificate stored
# (event=acme.certificate) to each later answer that sent an issued one.
answer_lags()
{
	python3 -c '
import re, sys
from datetime import datetime
stored, lags = None, []
for line in sys.stdin:
    m = re.match(r"ts=(\S+)Z ", line)
    if not m:
        continue
    t = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
    if " event=acme.certificate " in line:
        stored = t
    elif stored and " event=est.request " in line and " status=200 " in line \
            and " reason=issued" in line:
        lags.append(str(round((t - stored).total_seconds() * 1000)))
print(" ".join(lags))
'
}

# relaunch_est: stop `acmera serve` and start it again on the same config and port.
relaunch_est()
{
	local i
	est_stop
	"$ACMERA_BIN" serve --config "$EST_CONF" >>"$EST_LOG" 2>&1 &
	EST_PID=$!
	export EST_PID
	for ((i = 0; i < 100; i++)); do
		curl -s -o /dev/null --max-time 2 --cacert "$EST_CA" "$EST_URL$EST/cacerts" && return 0
		_pid_gone "$EST_PID" && break
		sleep 0.1
	done
	note "acmera serve did not answer again on $EST_URL"
	show_log "$EST_LOG" 20
	return 1
}

# refused DESC WANT NAME REASON_RE: the answer in $W/NAME.* has status WANT (given as the
# actual status in $code), a text body matching REASON_RE, and Pebble saw no request since
# $acme_before.
refused()
{
	local desc=$1 want=$2 name=$3 re=$4 got=$code body acme
	body=$(head -c 400 "$W/$name.body" 2>/dev/null | tr '\r\n' '  ')
	acme=$(pebble_count_requests)
	if [ "$got" != "$want" ]; then
		fail "$desc" "status $got, want $want; body: $body"
	elif ! grep -Eqi -- "$re" "$W/$name.body"; then
		fail "$desc" "status $got but the body does not say /$re/: $body"
	elif [ "$acme" != "$acme_before" ]; then
		fail "$desc" "Pebble saw $((acme - acme_before)) ACME request(s)"
	else
		ok "$desc: $want \"$(printf '%.90s' "$body" | sed 's/ *$//')\""
	fi
}

# ==== /cacerts: no credentials ====
code=$(req cacerts "$EST/cacerts")
ct=$(hdr "$W/cacerts.hdr" Content-Type)
if [ "$code" = 200 ] && [[ $ct == application/pkcs7-mime* ]]; then
	ok "cacerts: 200 without credentials, Content-Type $ct"
else
	fail "cacerts: 200 without credentials, application/pkcs7-mime" "status $code, $ct"
fi
cat "$PEBBLE_ROOT" "$PEBBLE_INTERMEDIATE" >"$W/pebble-chain.pem"
if p7_pem "$W/cacerts.body" "$W/cacerts.pem" &&
	[ "$(fingerprints "$W/cacerts.pem")" = "$(fingerprints "$W/pebble-chain.pem")" ]; then
	ok "cacerts: the PKCS#7 holds exactly Pebble's root and intermediate"
else
	fail "cacerts: the PKCS#7 holds exactly Pebble's root and intermediate" \
		"got: $(fingerprints "$W/cacerts.pem" | xargs)"
fi

# (curl --head writes the header block to the output file too: nothing else may follow it.)
code=$(req cacerts-head "$EST/cacerts" --head)
cl=$(hdr "$W/cacerts-head.hdr" Content-Length)
if [ "$code" = 200 ] && [ "$cl" = "$(wc -c <"$W/cacerts.body")" ] &&
	cmp -s "$W/cacerts-head.body" "$W/cacerts-head.hdr"; then
	ok "cacerts: HEAD answers 200 with the GET's Content-Length ($cl) and no body"
else
	fail "cacerts: HEAD answers 200 with the GET's length and no body" \
		"status $code, Content-Length '$cl', body $(wc -c <"$W/cacerts-head.body") bytes"
fi

# ==== /csrattrs: the assigned name ====
code=$(req csrattrs "$EST/csrattrs" -K "$BASIC")
ct=$(hdr "$W/csrattrs.hdr" Content-Type)
openssl base64 -d -in "$W/csrattrs.body" -out "$W/csrattrs.der"
openssl asn1parse -inform DER -in "$W/csrattrs.der" >"$W/csrattrs.txt" 2>&1
if [ "$code" = 200 ] && [[ $ct == application/csrattrs* ]] &&
	grep -Eq ":${USER_NAME//./\\.}\$" "$W/csrattrs.txt"; then
	ok "csrattrs: 200 application/csrattrs naming $USER_NAME"
else
	fail "csrattrs: 200 application/csrattrs naming $USER_NAME" "status $code, $ct
$(head -n 30 "$W/csrattrs.txt")"
fi
# The subjectAltName asked for: GeneralNames { dNSName <name> } in hex.
san_hex=$(printf '%s' "$USER_NAME" | od -An -tx1 | tr -d ' \n' | tr '[:lower:]' '[:upper:]')
san_hex=$(printf '30%02X82%02X%s' $((${#USER_NAME} + 2)) ${#USER_NAME} "$san_hex")
if grep -q "HEX DUMP\]:$san_hex\$" "$W/csrattrs.txt"; then
	ok "csrattrs: asks for subjectAltName dNSName $USER_NAME"
else
	fail "csrattrs: asks for subjectAltName dNSName $USER_NAME" "want $san_hex"
fi
if grep -q ':prime256v1' "$W/csrattrs.txt" && ! grep -q ':secp384r1' "$W/csrattrs.txt"; then
	ok "csrattrs: asks for an EC P-256 key"
else
	fail "csrattrs: asks for an EC P-256 key" "$(head -n 30 "$W/csrattrs.txt")"
fi

# ==== /simpleenroll with Basic, three encodings of the body ====
for enc in lines oneline crlf; do
	new_csr "$CSRS/$enc" "$USER_NAME" "$USER_NAME" || bail "openssl makes a CSR"
	"b64_$enc" "$CSRS/$enc.der" "$CSRS/$enc.b64"
	seen=$(enroll "enroll-$enc" "$EST/simpleenroll" "$CSRS/$enc.b64" 20 -K "$BASIC")
	check_enrolled "simpleenroll ($enc base64): certificate for the CSR's key and name" \
		"enroll-$enc" "$seen" "$CSRS/$enc.csr"
done
if [ "$(tail -c 1 "$CSRS/oneline.b64" | od -An -c | tr -d ' ')" != '\n' ] &&
	[ "$(wc -l <"$CSRS/oneline.b64")" = 0 ] && grep -q $'\r$' "$CSRS/crlf.b64"; then
	ok "simpleenroll: the one-line body had no newline, the CRLF body had CRLFs"
else
	fail "simpleenroll: the one-line body had no newline, the CRLF body had CRLFs"
fi

# The same CSR again: the stored certificate at once, no ACME request.
acme_before=$(pebble_count_requests)
code=$(post again "$EST/simpleenroll" "$CSRS/lines.b64" -K "$BASIC")
if [ "$code" = 200 ] && p7_pem "$W/again.body" "$W/again.pem" &&
	[ "$(leaf_fp "$W/again.pem")" = "$(leaf_fp "$W/enroll-lines.pem")" ] &&
	[ "$(pebble_count_requests)" = "$acme_before" ]; then
	ok "simpleenroll: the same CSR again gets the same certificate with no ACME request"
else
	fail "simpleenroll: the same CSR again gets the same certificate with no ACME request" \
		"status $code; ACME requests $acme_before -> $(pebble_count_requests)"
fi

# ==== 20 posts of one CSR at once: one newOrder, one certificate ====
new_csr "$CSRS/many" "$USER_NAME" "$USER_NAME" && b64_lines "$CSRS/many.der" "$CSRS/many.b64"
orders_before=$(orders)
pids=()
for i in $(seq 1 20); do
	enroll "many$i" "$EST/simpleenroll" "$CSRS/many.b64" 25 -K "$BASIC" >"$W/many$i.seen" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p"
done
orders_after=$(orders)
bad="" fps=""
for i in $(seq 1 20); do
	seen=$(cat "$W/many$i.seen")
	if [ "${seen##* }" != 200 ] || [ -s "$W/many$i.noretry" ] ||
		! p7_pem "$W/many$i.body" "$W/many$i.pem"; then
		bad="$bad #$i($seen)"
		continue
	fi
	fps="$fps$(leaf_fp "$W/many$i.pem")"$'\n'
done
if [ -z "$bad" ]; then
	ok "simpleenroll x20 at once: every client got 200 after its retries"
else
	fail "simpleenroll x20 at once: every client got 200 after its retries" "failed:$bad"
fi
if [ "$((orders_after - orders_before))" = 1 ]; then
	ok "simpleenroll x20 at once: exactly one ACME newOrder"
else
	fail "simpleenroll x20 at once: exactly one ACME newOrder" \
		"$((orders_after - orders_before)) newOrder requests"
fi
if [ "$(printf '%s' "$fps" | sort -u | grep -c .)" = 1 ] && [ -z "$bad" ] &&
	check_out=$(verify_issued "$W/many1.pem" "$CSRS/many.csr"); then
	ok "simpleenroll x20 at once: 20 identical certificates for the CSR"
else
	fail "simpleenroll x20 at once: 20 identical certificates for the CSR" \
		"$(printf '%s' "$fps" | sort | uniq -c) ${check_out:-}"
fi

# ==== IDevID: profile "iot" with the device's client certificate ====
DEV=(--cert "$DEVICE_CERT" --key "$DEVICE_KEY")
code=$(req iot-attrs "$EST/iot/csrattrs" "${DEV[@]}")
openssl base64 -d -in "$W/iot-attrs.body" | openssl asn1parse -inform DER >"$W/iot-attrs.txt" 2>&1
if [ "$code" = 200 ] && grep -Eq ":${DEVICE_NAME//./\\.}\$" "$W/iot-attrs.txt"; then
	ok "iot csrattrs: the IDevID gets $DEVICE_NAME"
else
	fail "iot csrattrs: the IDevID gets $DEVICE_NAME" "status $code
$(head -n 20 "$W/iot-attrs.txt")"
fi
new_csr "$CSRS/dev" "$DEVICE_NAME" "$DEVICE_NAME" && b64_lines "$CSRS/dev.der" "$CSRS/dev.b64"
seen=$(enroll iot-enroll "$EST/iot/simpleenroll" "$CSRS/dev.b64" 20 "${DEV[@]}")
if check_enrolled "iot simpleenroll: certificate for $DEVICE_NAME" iot-enroll "$seen" \
	"$CSRS/dev.csr"; then
	# Re-enroll with the new certificate as client certificate and a fresh key.
	new_csr "$CSRS/dev2" "$DEVICE_NAME" "$DEVICE_NAME" && b64_lines "$CSRS/dev2.der" "$CSRS/dev2.b64"
	seen=$(enroll iot-reenroll "$EST/iot/simplereenroll" "$CSRS/dev2.b64" 20 \
		--cert "$W/iot-enroll.pem" --key "$CSRS/dev.key")
	if check_enrolled "iot simplereenroll with the issued certificate: a new certificate" \
		iot-reenroll "$seen" "$CSRS/dev2.csr"; then
		if [ "$(leaf_fp "$W/iot-reenroll.pem")" != "$(leaf_fp "$W/iot-enroll.pem")" ]; then
			ok "iot simplereenroll: the new certificate differs from the old"
		else
			fail "iot simplereenroll: the new certificate differs from the old"
		fi
	fi
fi
new_csr "$CSRS/dev3" "$DEVICE_NAME" "$DEVICE_NAME" && b64_lines "$CSRS/dev3.der" "$CSRS/dev3.b64"
acme_before=$(pebble_count_requests)
code=$(post iot-reenroll-idevid "$EST/iot/simplereenroll" "$CSRS/dev3.b64" "${DEV[@]}")
refused "iot simplereenroll with the IDevID (not issued by acmera)" 403 iot-reenroll-idevid \
	'not .*issued|certificate'
if [ -s "$W/iot-reenroll.pem" ]; then
	# The certificate acmera issued under "iot" cannot renew under a profile that takes
	# no client certificates (or gives other names).
	new_csr_key() { openssl req -new -key "$1" -subj "/CN=$2" -addext "subjectAltName=DNS:$2" \
		-outform DER -out "$3" 2>/dev/null; }
	if new_csr_key "$CSRS/dev2.key" "$DEVICE_NAME" "$CSRS/relabel.der"; then
		b64_lines "$CSRS/relabel.der" "$CSRS/relabel.b64"
		code=$(post relabel "$EST/simplereenroll" "$CSRS/relabel.b64" \
			--cert "$W/iot-reenroll.pem" --key "$CSRS/dev2.key")
		refused "simplereenroll of an iot certificate under the default label" 403 relabel \
			'not a name this profile gives'
	else
		fail "simplereenroll under another label: make the CSR"
	fi
else
	fail "simplereenroll under another label" "no re-enrolled iot certificate to try it with"
fi

# ==== refusals: status, reason, no ACME traffic ====
acme_before=$(pebble_count_requests)
code=$(post no-creds "$EST/simpleenroll" "$CSRS/lines.b64")
refused "no credentials" 401 no-creds 'auth'
wa=$(hdr "$W/no-creds.hdr" WWW-Authenticate)
if [[ $wa == Basic* ]]; then
	ok "no credentials: WWW-Authenticate: $wa"
else
	fail "no credentials: WWW-Authenticate: Basic" "got '$wa'"
fi
code=$(req no-creds-attrs "$EST/csrattrs")
refused "csrattrs without credentials" 401 no-creds-attrs 'auth'
code=$(post wrong-pass "$EST/simpleenroll" "$CSRS/lines.b64" -K "$WRONG")
refused "wrong password" 401 wrong-pass 'password|auth|user'

new_csr "$CSRS/other" "other.$ZONE" "other.$ZONE" && b64_lines "$CSRS/other.der" "$CSRS/other.b64"
code=$(post other "$EST/simpleenroll" "$CSRS/other.b64" -K "$BASIC")
refused "CSR for another device's name" 403 other "other\\.$ZONE"
new_csr "$CSRS/otherdev" "sn9999.iot.$ZONE" "sn9999.iot.$ZONE" &&
	b64_lines "$CSRS/otherdev.der" "$CSRS/otherdev.b64"
code=$(post otherdev "$EST/iot/simpleenroll" "$CSRS/otherdev.b64" "${DEV[@]}")
refused "iot: CSR for another device's name" 403 otherdev "sn9999\\.iot"
new_csr "$CSRS/wild" "$USER_NAME" "*.$ZONE" && b64_lines "$CSRS/wild.der" "$CSRS/wild.b64"
code=$(post wild "$EST/simpleenroll" "$CSRS/wild.b64" -K "$BASIC")
refused "wildcard name" 403 wild 'wildcard'
new_csr "$CSRS/two" "$USER_NAME" "$USER_NAME" "www.$USER_NAME" &&
	b64_lines "$CSRS/two.der" "$CSRS/two.b64"
code=$(post two "$EST/simpleenroll" "$CSRS/two.b64" -K "$BASIC")
refused "two names" 403 two '2 names'

# A broken signature: flip the last byte of the DER (inside the signature's s value).
python3 -c 'import sys
d = bytearray(open(sys.argv[1], "rb").read())
d[-1] ^= 1
open(sys.argv[2], "wb").write(d)' "$CSRS/lines.der" "$CSRS/badsig.der"
b64_lines "$CSRS/badsig.der" "$CSRS/badsig.b64"
# (openssl 3.0 req -verify exits 0 either way: read what it says.)
if openssl req -inform DER -in "$CSRS/badsig.der" -noout -verify 2>&1 |
	grep -q 'verify failure'; then
	ok "broken signature: openssl agrees the flipped CSR's signature is bad"
else
	fail "broken signature: openssl agrees the flipped CSR's signature is bad"
fi
code=$(post badsig "$EST/simpleenroll" "$CSRS/badsig.b64" -K "$BASIC")
refused "CSR with a broken signature" 400 badsig 'signature'
printf 'MIIB%%not*base64!\n' >"$W/bad.b64"
code=$(post badb64 "$EST/simpleenroll" "$W/bad.b64" -K "$BASIC")
refused "malformed base64" 400 badb64 'base64'
code=$(req ctype "$EST/simpleenroll" -K "$BASIC" -H 'Content-Type: text/plain' \
	--data-binary "@$CSRS/lines.b64")
refused "Content-Type text/plain" 415 ctype 'Content-Type'
head -c 6000 /dev/zero | tr '\0' 'A' >"$W/big.b64"
code=$(post big "$EST/simpleenroll" "$W/big.b64" -K "$BASIC")
refused "body larger than max_body (4096)" 413 big 'large|size|413'
code=$(post big2 "$EST/simpleenroll" "$W/big.b64" -K "$BASIC" -H 'Expect:')
refused "body larger than max_body, sent without Expect: 100-continue" 413 big2 'large|size|413'

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/serialNumber=SN1234/CN=sensor" -keyout "$W/stranger.key" -out "$W/stranger.pem" 2>/dev/null
code=$(post stranger "$EST/iot/simpleenroll" "$CSRS/dev3.b64" --cert "$W/stranger.pem" \
	--key "$W/stranger.key")
refused "iot: self-signed client certificate (same subject as the IDevID)" 403 stranger \
	'certif|verif|trust|issuer'
code=$(req stranger-attrs "$EST/iot/csrattrs" --cert "$W/stranger.pem" --key "$W/stranger.key")
refused "iot csrattrs: self-signed client certificate" 403 stranger-attrs \
	'certif|verif|trust|issuer'
code=$(post iot-basic "$EST/iot/simpleenroll" "$CSRS/dev3.b64" -K "$BASIC")
refused "iot: HTTP Basic on a certificate-only profile" 403 iot-basic 'client certificate'
wa=$(hdr "$W/iot-basic.hdr" WWW-Authenticate)
if [ -z "$wa" ]; then
	ok "certificate-only profile: no WWW-Authenticate offering a scheme that cannot work"
else
	fail "certificate-only profile: no WWW-Authenticate" "got '$wa'"
fi

code=$(req get-enroll "$EST/simpleenroll" -K "$BASIC")
refused "GET on simpleenroll" 405 get-enroll 'not allowed'
allow=$(hdr "$W/get-enroll.hdr" Allow)
if [ "$allow" = POST ]; then
	ok "GET on simpleenroll: Allow: POST"
else
	fail "GET on simpleenroll: Allow: POST" "Allow '$allow'"
fi
code=$(post post-cacerts "$EST/cacerts" "$CSRS/lines.b64")
refused "POST on cacerts" 405 post-cacerts 'not allowed'
code=$(post unknown-op "$EST/fullcmc" "$CSRS/lines.b64" -K "$BASIC")
refused "unknown operation (fullcmc)" 404 unknown-op 'operation'
code=$(req unknown-op2 "$EST/iot/nosuchop" "${DEV[@]}")
refused "unknown operation on a label" 404 unknown-op2 'operation'
code=$(post unknown-label "$EST/nosuch/simpleenroll" "$CSRS/lines.b64" -K "$BASIC")
refused "unknown label" 404 unknown-label 'label'
code=$(req deep "$EST/iot/x/simpleenroll" "${DEV[@]}")
refused "a path one level too deep" 404 deep 'EST'
# The path is decoded: an encoded newline in the label must not forge a log line.
code=$(req forge "$EST/x%0aevent=forged%20level=error/cacerts")
refused "a label with an encoded newline" 404 forge 'label'
if grep -q '^event=forged' "$EST_LOG"; then
	fail "a label with an encoded newline forges no log line" "$(grep -m1 -B1 '^event=forged' "$EST_LOG")"
else
	ok "a label with an encoded newline forges no log line"
fi

# ==== keep-alive, TLS 1.2 and TLS 1.3 ====
# Two requests on one connection: csrattrs, then the stored certificate of a CSR.
out=$(curl -sS --max-time 15 --noproxy '*' --cacert "$EST_CA" -K "$BASIC" \
	-o /dev/null -w '%{http_code} %{num_connects}\n' "$EST_URL$EST/csrattrs" \
	--next --cacert "$EST_CA" -K "$BASIC" -H 'Content-Type: application/pkcs10' \
	--data-binary "@$CSRS/lines.b64" -o "$W/ka.body" -w '%{http_code} %{num_connects}\n' \
	"$EST_URL$EST/simpleenroll" 2>"$W/ka.err" | xargs)
if [ "$out" = "200 1 200 0" ] && p7_pem "$W/ka.body" "$W/ka.pem" &&
	[ "$(leaf_fp "$W/ka.pem")" = "$(leaf_fp "$W/enroll-lines.pem")" ]; then
	ok "keep-alive: csrattrs then simpleenroll on one connection"
else
	fail "keep-alive: csrattrs then simpleenroll on one connection" \
		"status/connects: $out $(cat "$W/ka.err")"
fi
for v in 1.2 1.3; do
	if [ "$v" = 1.2 ]; then tls=(--tlsv1.2 --tls-max 1.2); else tls=(--tlsv1.3); fi
	code=$(post "tls$v" "$EST/simpleenroll" "$CSRS/lines.b64" -K "$BASIC" -v "${tls[@]}")
	if [ "$code" = 200 ] && grep -q "SSL connection using TLSv$v" "$W/tls$v.err" &&
		p7_pem "$W/tls$v.body" "$W/tls$v.pem" &&
		[ "$(leaf_fp "$W/tls$v.pem")" = "$(leaf_fp "$W/enroll-lines.pem")" ]; then
		ok "TLS $v: simpleenroll answered"
	else
		fail "TLS $v: simpleenroll answered" "status $code; $(grep -m1 'SSL connection' "$W/tls$v.err")"
	fi
	code=$(req "tls$v-iot" "$EST/iot/csrattrs" "${DEV[@]}" -v "${tls[@]}")
	if [ "$code" = 200 ] && grep -q "SSL connection using TLSv$v" "$W/tls$v-iot.err"; then
		ok "TLS $v: client certificate accepted (iot csrattrs)"
	else
		fail "TLS $v: client certificate accepted (iot csrattrs)" "status $code"
	fi
	# A resumed session still carries the device's identity: the second connection
	# sends no certificate, yet csrattrs names the device.
	sv=${v/./_}
	for pass in new reused; do
		if [ $pass = new ]; then sess=(-sess_out "$W/sess$sv"); else sess=(-sess_in "$W/sess$sv"); fi
		printf 'GET %s/iot/csrattrs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' \
			"$EST" | timeout 15 openssl s_client -connect "127.0.0.1:$EST_PORT" -ign_eof \
			"-tls${sv}" -CAfile "$EST_CA" -cert "$DEVICE_CERT" -key "$DEVICE_KEY" \
			"${sess[@]}" >"$W/resume$sv-$pass.out" 2>&1
	done
	# The body: the base64 lines after the response's blank line (s_client's own
	# "closed" that follows has no length of whole base64 quanta).
	attrs=$(tr -d '\r' <"$W/resume$sv-reused.out" | awk '
		/^HTTP\/1\.1 / { head = 1; next }
		head && $0 == "" { head = 0; body = 1; next }
		body && /^[A-Za-z0-9+\/=]+$/ && length($0) % 4 == 0 { print; next }
		body { exit }' | openssl base64 -d 2>/dev/null |
		openssl asn1parse -inform DER 2>/dev/null)
	if grep -q "^New, TLSv$v" "$W/resume$sv-new.out" &&
		grep -q "^Reused, TLSv$v" "$W/resume$sv-reused.out" &&
		grep -q "^HTTP/1.1 200" "$W/resume$sv-reused.out" &&
		grep -Eq ":${DEVICE_NAME//./\\.}\$" <<<"$attrs"; then
		ok "TLS $v: a resumed session keeps the client certificate's identity"
	else
		fail "TLS $v: a resumed session keeps the client certificate's identity" \
			"$(grep -E '^(New|Reused),|^HTTP/' "$W/resume$sv-new.out" "$W/resume$sv-reused.out")"
	fi
done

# ==== restart: a profile outside the zone; wait = 0; restart between a 202 and the retry ====
sed -i 's/^wait = .*/wait = 0/' "$EST_CONF"
printf '\n[profile "outside"]\nname_template = {user}.elsewhere.test\nauth = basic\n' >>"$EST_CONF"
# Without ca_chain, /cacerts is learnt from the newest issued chain: Pebble's intermediate.
sed -i '/^ca_chain = /d' "$EST_CONF"
if relaunch_est; then
	new_csr "$CSRS/outside" "$EST_USER.elsewhere.test" "$EST_USER.elsewhere.test" &&
		b64_lines "$CSRS/outside.der" "$CSRS/outside.b64"
	acme_before=$(pebble_count_requests)
	code=$(post outside "$EST/outside/simpleenroll" "$CSRS/outside.b64" -K "$BASIC")
	refused "a name outside the DNS zone" 403 outside 'outside'
	for n in 1 2; do # the second answer comes from the worker's memo
		code=$(req learnt$n "$EST/cacerts")
		if [ "$code" = 200 ] && p7_pem "$W/learnt$n.body" "$W/learnt$n.pem" &&
			[ "$(fingerprints "$W/learnt$n.pem")" = "$(fingerprints "$PEBBLE_INTERMEDIATE")" ]; then
			ok "cacerts without ca_chain (#$n): the chain learnt from issued certificates"
		else
			fail "cacerts without ca_chain (#$n): the learnt chain" \
				"status $code: $(fingerprints "$W/learnt$n.pem" | xargs)"
		fi
	done
	code=$(req outside-attrs "$EST/outside/csrattrs" -K "$BASIC")
	refused "csrattrs does not hand out a name outside the DNS zone" 403 outside-attrs 'outside'

	new_csr "$CSRS/restart" "$USER_NAME" "$USER_NAME" &&
		b64_lines "$CSRS/restart.der" "$CSRS/restart.b64"
	orders_before=$(orders)
	orders_mark=$orders_before
	code=$(post restart1 "$EST/simpleenroll" "$CSRS/restart.b64" -K "$BASIC")
	ra=$(hdr "$W/restart1.hdr" Retry-After)
	if [ "$code" = 202 ] && [[ $ra =~ ^[0-9]+$ ]]; then
		ok "wait = 0: the first answer is 202 with Retry-After: $ra"
	else
		fail "wait = 0: the first answer is 202 with Retry-After" "status $code, Retry-After '$ra'"
	fi
	# Stop it while the order is open at the CA, so the job is in flight.
	wait_for "the newOrder of the restart CSR" 10 orders_above "$orders_before"
	orders_before=$(orders)
	t0=$(now_ms)
	if relaunch_est; then
		note "acmera serve restarted in $(($(now_ms) - t0)) ms;" \
			"$((orders_before - orders_mark)) newOrder sent before it"
		seen=$(enroll restart2 "$EST/simpleenroll" "$CSRS/restart.b64" 40 -K "$BASIC")
		check_enrolled "restart between a 202 and the retry: the retry gets the certificate" \
			restart2 "$seen" "$CSRS/restart.csr"
		note "newOrder requests after the restart: $(($(orders) - orders_before))"
	else
		fail "acmera serve restarts on the same port"
	fi

	# A wait longer than the issuance: the first answer is the certificate.
	sed -i 's/^wait = .*/wait = 20000/' "$EST_CONF"
	if relaunch_est; then
		new_csr "$CSRS/long" "$USER_NAME" "$USER_NAME" && b64_lines "$CSRS/long.der" "$CSRS/long.b64"
		seen=$(enroll long "$EST/simpleenroll" "$CSRS/long.b64" 1 -K "$BASIC" --max-time 25)
		check_enrolled "wait = 20000: the first answer is 200 with the certificate" long "$seen" \
			"$CSRS/long.csr"
		# Held requests are answered when their job finishes (the store wakes the worker),
		# not at their next look in the store (each second, for jobs finished elsewhere):
		# the same CSR posted three times 300 ms apart while Pebble is paused, so all
		# three wait on one job, each answered within 150 ms of its certificate being
		# stored. Looks a second apart from each request's arrival would answer at most
		# one of them that soon.
		new_csr "$CSRS/prompt" "$USER_NAME" "$USER_NAME" &&
			b64_lines "$CSRS/prompt.der" "$CSRS/prompt.b64"
		mark=$(wc -l <"$EST_LOG")
		kill -STOP "$PEBBLE_PID"
		pids=()
		for n in 1 2 3; do
			post prompt$n "$EST/simpleenroll" "$CSRS/prompt.b64" -K "$BASIC" --max-time 25 \
				>"$W/prompt$n.code" &
			pids+=($!)
			sleep 0.3
		done
		kill -CONT "$PEBBLE_PID"
		wait "${pids[@]}"
		statuses="$(<"$W/prompt1.code") $(<"$W/prompt2.code") $(<"$W/prompt3.code")"
		lags=$(tail -n +"$((mark + 1))" "$EST_LOG" | answer_lags)
		read -r -a lag <<<"$lags"
		if [ "$statuses" = "200 200 200" ] && [ "${#lag[@]}" = 3 ] &&
			[ "${lag[0]}" -lt 150 ] && [ "${lag[1]}" -lt 150 ] && [ "${lag[2]}" -lt 150 ]; then
			ok "held requests are answered as soon as their job finishes ($lags ms after)"
		else
			fail "held requests are answered as soon as their job finishes" \
				"statuses: $statuses; ms from certificate stored to each answer: $lags"
		fi
		# A client that gives up during the wait: the job goes on, its retry gets it.
		new_csr "$CSRS/left" "$USER_NAME" "$USER_NAME" && b64_lines "$CSRS/left.der" "$CSRS/left.b64"
		code=$(post left1 "$EST/simpleenroll" "$CSRS/left.b64" -K "$BASIC" --max-time 0.3)
		seen=$(enroll left2 "$EST/simpleenroll" "$CSRS/left.b64" 3 -K "$BASIC" --max-time 25)
		check_enrolled \
			"a client that left during the wait (status $code): its retry gets the certificate" \
			left2 "$seen" "$CSRS/left.csr"
		# Stopped while a request waits: the server ends promptly, and the waiting client
		# gets 503 with Retry-After (sanitizer builds check nothing leaks).
		new_csr "$CSRS/stopw" "$USER_NAME" "$USER_NAME" && b64_lines "$CSRS/stopw.der" "$CSRS/stopw.b64"
		post stopw "$EST/simpleenroll" "$CSRS/stopw.b64" -K "$BASIC" --max-time 20 >"$W/stopw.code" &
		stopw_pid=$!
		sleep 0.3
		t0=$(now_ms)
		est_stop
		wait "$stopw_pid"
		ms=$(($(now_ms) - t0))
		if [ "$ms" -lt 5000 ]; then
			ok "stopped while a request waits: acmera serve ended in $ms ms"
		else
			fail "stopped while a request waits: acmera serve ends promptly" "$ms ms"
		fi
		code=$(cat "$W/stopw.code")
		ra=$(hdr "$W/stopw.hdr" Retry-After)
		if [ "$code" = 503 ] && [[ $ra =~ ^[0-9]+$ ]] && grep -q 'stopping' "$W/stopw.body"; then
			ok "stopped while a request waits: the client got 503, Retry-After: $ra"
		else
			fail "stopped while a request waits: the client gets 503 with Retry-After" \
				"status $code, Retry-After '$ra', body: $(head -c 200 "$W/stopw.body")"
		fi
	else
		fail "acmera serve restarts with wait = 20000"
	fi
else
	fail "acmera serve restarts with a profile added"
fi
est_stop

# ==== a certificate past its notAfter is never served ====
# Pebble 2.4 takes certificateValidityPeriod in seconds; a second Pebble issues short-lived
# certificates and a fresh RA (own store) uses it.
SHORT=12
pebble_stop
if PEBBLE_VALIDITY_SECONDS=$SHORT pebble_start "$TEST_TMP/pebble-short" &&
	est_start "$TEST_TMP/est-short" "{user}.$ZONE" "wait = 300" "retry_after = 1"; then
	printf 'user = "%s:%s"\n' "$EST_USER" "$EST_PASS" >"$BASIC"
	new_csr "$CSRS/short" "$USER_NAME" "$USER_NAME" && b64_lines "$CSRS/short.der" "$CSRS/short.b64"
	seen=$(enroll short1 "$EST/simpleenroll" "$CSRS/short.b64" 20 -K "$BASIC")
	if check_enrolled "short-lived: enrolled against Pebble with ${SHORT}s validity" short1 \
		"$seen" "$CSRS/short.csr"; then
		na=$(openssl x509 -in "$W/short1.pem" -noout -enddate | cut -d= -f2)
		nb=$(openssl x509 -in "$W/short1.pem" -noout -startdate | cut -d= -f2)
		na_s=$(date -d "$na" +%s)
		span=$((na_s - $(date -d "$nb" +%s)))
		life=$((na_s - $(date +%s)))
		if [ "$span" -gt "$((SHORT + 5))" ]; then
			note "Pebble did not honour certificateValidityPeriod=$SHORT (valid $nb to $na):" \
				"the expiry check is SKIPPED, not passed"
		elif [ "$life" -le 1 ]; then
			fail "short-lived: the certificate arrives before its notAfter" "notAfter $na, life ${life}s"
		else
			note "the certificate is valid from $nb to $na (${span}s; expires in ${life}s)"
			code=$(post short-hit "$EST/simpleenroll" "$CSRS/short.b64" -K "$BASIC")
			if [ "$code" = 200 ] && p7_pem "$W/short-hit.body" "$W/short-hit.pem" &&
				[ "$(leaf_fp "$W/short-hit.pem")" = "$(leaf_fp "$W/short1.pem")" ]; then
				ok "short-lived: before notAfter the same CSR gets the stored certificate"
			else
				fail "short-lived: before notAfter the same CSR gets the stored certificate" "status $code"
			fi
			while [ "$(date +%s)" -le "$((na_s + 1))" ]; do
				sleep 0.5
			done
			seen=$(enroll short2 "$EST/simpleenroll" "$CSRS/short.b64" 20 -K "$BASIC")
			if [ "${seen%% *}" = 200 ] && p7_pem "$W/short2.body" "$W/short2.first.pem" &&
				[ "$(leaf_fp "$W/short2.first.pem")" = "$(leaf_fp "$W/short1.pem")" ]; then
				fail "short-lived: the expired certificate is not served" "it was served"
			elif check_enrolled "short-lived: past notAfter the same CSR gets a new certificate" \
				short2 "$seen" "$CSRS/short.csr"; then
				if [ "$(leaf_fp "$W/short2.pem")" != "$(leaf_fp "$W/short1.pem")" ]; then
					ok "short-lived: the expired certificate is not served (first answer ${seen%% *})"
				else
					fail "short-lived: the expired certificate is not served"
				fi
			fi
		fi
	fi
else
	fail "a Pebble with short validity and a fresh RA start"
fi

# ==== the RA's logs: no sanitizer report (leaks show at exit) ====
est_stop
check "acmera serve: no sanitizer report" no_sanitizer_report "$TEST_TMP"/est*/serve.log

finish
