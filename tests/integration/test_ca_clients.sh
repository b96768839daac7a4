#!/usr/bin/env bash
# Conformance of `acmera ca` with independent ACME clients (issue 4): lego (dns-01 through
# named with RFC 2136 + TSIG, a name and a wildcard, renew, revoke twice; http-01; External
# Account Binding required by a second CA), certbot (dns-rfc2136 plugin) and uacme (the
# nsupdate hook of bench/). Each certificate must verify to the CA's root with exactly the
# names asked for, and no _acme-challenge TXT record may stay in the zone.
#
# The CA asks named ([ca] resolver) for the A/AAAA records of an http-01 name too; the
# zone's wildcard "* IN A 127.0.0.1" (lib/named.sh) sends every name of it to lego's
# http-01 server on 127.0.0.1:$ACMECA_HTTP_PORT, and dns-01 works for the same names.
set -uo pipefail
here=$(dirname "$0")
. "$here/lib/common.sh"
. "$here/lib/named.sh"
. "$here/lib/acmera.sh"
. "$here/lib/acmeca.sh"

need named nsupdate dig lego certbot uacme openssl curl sqlite3 unshare timeout

ZONE=clients.localhost
named_start "$TEST_TMP/named" "$ZONE" || bail "named starts"
acmeca_start "$TEST_TMP/ca" || bail "acmera ca starts"
ok "acmera ca serves $ACME_DIRECTORY, validating dns-01 through named on $NAMED_PORT"

# The TSIG key fields, as lego's and certbot's rfc2136 plugins want them.
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

# cert_is CERT NAME...: the chain in CERT (leaf first) verifies to $ACME_ROOT and the leaf
# carries exactly NAME... as DNS names.
cert_is()
{
	local cert=$1 leaf=$TEST_TMP/check-leaf.pem chain=$TEST_TMP/check-chain.pem want got
	shift
	[ -s "$cert" ] || { echo "$cert is missing or empty"; return 1; }
	awk 'BEGIN{n=0} /BEGIN CERT/{n++} n==1{print}' "$cert" >"$leaf"
	awk 'BEGIN{n=0} /BEGIN CERT/{n++} n>1{print}' "$cert" >"$chain"
	if [ -s "$chain" ]; then
		openssl verify -CAfile "$ACME_ROOT" -untrusted "$chain" "$leaf" || return 1
	else
		openssl verify -CAfile "$ACME_ROOT" "$leaf" || return 1
	fi
	want=$(printf '%s\n' "$@" | sort | xargs)
	got=$(openssl x509 -in "$leaf" -noout -ext subjectAltName 2>/dev/null |
		grep -o 'DNS:[^, ]*' | sed 's/^DNS://' | sort | xargs)
	[ "$got" = "$want" ] || { echo "names: got [$got], want [$want]"; return 1; }
}

no_challenge_txt()
{
	local left
	left=$(zone_challenge_txt)
	[ -z "$left" ] || { echo "left in the zone: $left"; return 1; }
}

serial_of()
{
	openssl x509 -in "$1" -noout -serial 2>/dev/null | sed 's/^serial=//'
}

# lego_run LOG ARGS...: lego against the running CA, dns-01 settings in the environment.
lego_run()
{
	local log=$1
	shift
	LEGO_CA_CERTIFICATES=$ACME_CA_BUNDLE \
		RFC2136_NAMESERVER=127.0.0.1:$NAMED_PORT \
		RFC2136_TSIG_KEY=$tsig_name. \
		RFC2136_TSIG_ALGORITHM=${tsig_alg%.}. \
		RFC2136_TSIG_SECRET=$tsig_secret \
		RFC2136_TTL=10 RFC2136_PROPAGATION_TIMEOUT=30 RFC2136_POLLING_INTERVAL=1 \
		RFC2136_SEQUENCE_INTERVAL=1 \
		timeout 90 lego --server "$ACME_DIRECTORY" --accept-tos --email lego@example.org \
		--key-type ec256 "$@" >"$log" 2>&1
}

# ---- lego, dns-01: a name and its wildcard; renew; revoke twice ----

name=lego.$DNS_ZONE
lego_dns=(--path "$TEST_TMP/lego" --dns rfc2136 --dns.resolvers "127.0.0.1:$NAMED_PORT"
	--dns.disable-cp --domains "$name" --domains "*.$name")
crt=$TEST_TMP/lego/certificates/$name.crt
if check "lego obtains a certificate for $name and *.$name by dns-01 (RFC 2136 + TSIG)" \
	lego_run "$TEST_TMP/lego-run.log" "${lego_dns[@]}" run; then
	check "lego's certificate verifies to the CA's root with exactly $name, *.$name" \
		cert_is "$crt" "$name" "*.$name"
else
	show_log "$ACMECA_LOG" 20
fi
check "no _acme-challenge TXT record is left after lego run" no_challenge_txt

serial1=$(serial_of "$crt")
if check "lego renew (forced with --days) gets a new certificate" \
	lego_run "$TEST_TMP/lego-renew.log" "${lego_dns[@]}" renew --days 100000 --no-random-sleep
then
	check "the renewed certificate verifies with exactly $name, *.$name" \
		cert_is "$crt" "$name" "*.$name"
	check "the renewed certificate has a new serial" \
		test -n "$serial1" -a "$(serial_of "$crt")" != "$serial1"
fi
check "no _acme-challenge TXT record is left after lego renew" no_challenge_txt

serial2=$(serial_of "$crt")
revoked_in_db()
{
	local hex=$1
	[ "$(sqlite3 "$ACMECA_DIR/ca.db" \
		"select count(*) from ca_certs where revoked = 1 and upper(serial) = upper('$hex')")" = 1 ] ||
		[ "$(sqlite3 "$ACMECA_DIR/ca.db" \
			"select count(*) from ca_certs where revoked = 1 and
			 ltrim(upper(serial), '0') = ltrim(upper('$hex'), '0')")" = 1 ]
}
if check "lego revoke: the CA revokes the renewed certificate" \
	lego_run "$TEST_TMP/lego-revoke.log" "${lego_dns[@]}" revoke --keep; then
	check "the CA's store marks serial $serial2 revoked" revoked_in_db "$serial2"
fi
rc=0
lego_run "$TEST_TMP/lego-revoke2.log" "${lego_dns[@]}" revoke --keep || rc=$?
if [ "$rc" -ne 0 ] && grep -q 'alreadyRevoked' "$TEST_TMP/lego-revoke2.log"; then
	ok "a second lego revoke is refused with alreadyRevoked"
else
	fail "a second lego revoke is refused with alreadyRevoked" \
		"lego exit status $rc
$(tail -n 5 "$TEST_TMP/lego-revoke2.log")"
fi

# ---- lego, http-01 on the CA's http_port ----

web=web.$DNS_ZONE
if check "lego obtains a certificate for $web by http-01 on 127.0.0.1:$ACMECA_HTTP_PORT" \
	lego_run "$TEST_TMP/lego-http.log" --path "$TEST_TMP/lego-http" --http \
	--http.port "127.0.0.1:$ACMECA_HTTP_PORT" --domains "$web" run; then
	check "the http-01 certificate verifies with exactly $web" \
		cert_is "$TEST_TMP/lego-http/certificates/$web.crt" "$web"
	http_valid()
	{
		[ "$(sqlite3 "$ACMECA_DIR/ca.db" "select count(*) from ca_challenges c
			join ca_authzs a on a.id = c.authz where a.name = '$web'
			and c.type = 'http-01' and c.status = 'valid'")" = 1 ]
	}
	check "the CA validated $web by its http-01 challenge" http_valid
else
	show_log "$ACMECA_LOG" 20
fi

# ---- certbot, dns-rfc2136 ----

cb=certbot.$DNS_ZONE
creds=$TEST_TMP/certbot-rfc2136.ini
(umask 077 && printf '%s\n' "dns_rfc2136_server = 127.0.0.1" \
	"dns_rfc2136_port = $NAMED_PORT" "dns_rfc2136_name = $tsig_name" \
	"dns_rfc2136_secret = $tsig_secret" \
	"dns_rfc2136_algorithm = $(tr '[:lower:]' '[:upper:]' <<<"${tsig_alg%.}")" >"$creds")
certbot_run()
{
	REQUESTS_CA_BUNDLE=$ACME_CA_BUNDLE timeout 120 certbot certonly --non-interactive \
		--agree-tos -m certbot@example.org --server "$ACME_DIRECTORY" \
		--config-dir "$TEST_TMP/certbot/config" --work-dir "$TEST_TMP/certbot/work" \
		--logs-dir "$TEST_TMP/certbot/logs" --authenticator dns-rfc2136 \
		--dns-rfc2136-credentials "$creds" --dns-rfc2136-propagation-seconds 1 \
		--key-type ecdsa -d "$cb" >"$TEST_TMP/certbot.log" 2>&1
}
if check "certbot obtains a certificate for $cb by dns-01 (dns-rfc2136)" certbot_run; then
	check "certbot's certificate verifies with exactly $cb" \
		cert_is "$TEST_TMP/certbot/config/live/$cb/fullchain.pem" "$cb"
else
	show_log "$TEST_TMP/certbot/logs/letsencrypt.log" 30
	show_log "$ACMECA_LOG" 20
fi
check "no _acme-challenge TXT record is left after certbot" no_challenge_txt

# ---- uacme, the nsupdate hook of bench/ ----

# uacme 1.7.4 has no option for a TLS trust anchor (libcurl-gnutls reads /etc/ssl/certs):
# it runs in a private mount namespace where /etc/ssl/certs holds only the CA's TLS CA.
# The real files are never touched.
ua=uacme.$DNS_ZONE
mkdir -p "$TEST_TMP/uacme/conf" "$TEST_TMP/uacme/certs"
cp "$ACME_CA_BUNDLE" "$TEST_TMP/uacme/certs/ca-certificates.crt"
# shellcheck disable=SC2016 # expanded by the inner sh
uacme_run()
{
	HOOK_DNS_SERVER=127.0.0.1 HOOK_DNS_PORT=$NAMED_PORT HOOK_DNS_ZONE=$DNS_ZONE \
		HOOK_TSIG_KEYFILE=$TSIG_KEYFILE timeout 90 \
		unshare -m --propagation private -- sh -c \
		'mount --bind "$1" /etc/ssl/certs && shift && exec "$@"' sh \
		"$TEST_TMP/uacme/certs" uacme -v -c "$TEST_TMP/uacme/conf" \
		-h "$ACMERA_SRC/bench/uacme-nsupdate-hook" -a "$ACME_DIRECTORY" -t EC -y "$@"
}
if check "uacme registers an account" uacme_run new uacme@example.org; then
	if check "uacme obtains a certificate for $ua by dns-01 (nsupdate hook)" \
		uacme_run issue "$ua"; then
		check "uacme's certificate verifies with exactly $ua" \
			cert_is "$TEST_TMP/uacme/conf/$ua/cert.pem" "$ua"
	else
		show_log "$ACMECA_LOG" 20
	fi
fi
check "no _acme-challenge TXT record is left after uacme" no_challenge_txt

# ---- External Account Binding: a second CA that requires it ----

acmeca_stop
eab_kid=conf-kid-1
eab_key=$(openssl rand 32 | basenc --base64url | tr -d '=\n')
mkdir -p "$TEST_TMP/ca-eab"
(umask 077 && printf '# test EAB keys\n%s %s\n' "$eab_kid" "$eab_key" >"$TEST_TMP/ca-eab/eab.keys")
acmeca_start "$TEST_TMP/ca-eab" "eab_required = yes" "eab_file = $TEST_TMP/ca-eab/eab.keys" ||
	bail "a second acmera ca with eab_required = yes starts"
ok "a second acmera ca with eab_required = yes starts"
meta_eab()
{
	curl -sS --fail --max-time 5 --cacert "$ACME_CA_BUNDLE" "$ACME_DIRECTORY" |
		grep -q '"externalAccountRequired": *true'
}
check "its directory says externalAccountRequired: true" meta_eab

accounts()
{
	sqlite3 "$ACMECA_DIR/ca.db" 'select count(*) from ca_accounts'
}
# lego reads externalAccountRequired from the directory and stops before asking; the CA's
# own refusal of a newAccount without EAB is asked for directly with lib/acme_jws.py.
rc=0
lego_run "$TEST_TMP/lego-noeab.log" --path "$TEST_TMP/lego-noeab" --dns rfc2136 \
	--dns.resolvers "127.0.0.1:$NAMED_PORT" --dns.disable-cp --domains "noeab.$DNS_ZONE" \
	run || rc=$?
if [ "$rc" -ne 0 ] && grep -q 'requires External Account Binding' "$TEST_TMP/lego-noeab.log"
then
	ok "lego without EAB stops: the server requires External Account Binding"
else
	fail "lego without EAB stops: the server requires External Account Binding" \
		"lego exit status $rc
$(tail -n 5 "$TEST_TMP/lego-noeab.log")"
fi
PY=/usr/bin/python3
if "$PY" -c 'import josepy, cryptography' 2>/dev/null &&
	"$PY" "$here/lib/acme_jws.py" "$TEST_TMP/jws.json" init "$ACME_DIRECTORY" "$ACME_CA_BUNDLE"
then
	got=$("$PY" "$here/lib/acme_jws.py" "$TEST_TMP/jws.json" case new-account-no-eab x)
	check "a newAccount without EAB is refused: 403 externalAccountRequired" \
		test "$got" = "403 externalAccountRequired nonce application/problem+json"
else
	fail "lib/acme_jws.py runs with Debian's python3 (python3-josepy)"
fi
check "the refused registration made no account" test "$(accounts)" = 0

rc=0
lego_run "$TEST_TMP/lego-badeab.log" --path "$TEST_TMP/lego-badeab" --eab --kid "$eab_kid" \
	--hmac "$(openssl rand 32 | basenc --base64url | tr -d '=\n')" --dns rfc2136 \
	--dns.resolvers "127.0.0.1:$NAMED_PORT" --dns.disable-cp --domains "badeab.$DNS_ZONE" \
	run || rc=$?
if [ "$rc" -ne 0 ] && grep -q 'unauthorized' "$TEST_TMP/lego-badeab.log"; then
	ok "lego with a wrong EAB MAC key is refused (unauthorized)"
else
	fail "lego with a wrong EAB MAC key is refused (unauthorized)" \
		"lego exit status $rc
$(tail -n 5 "$TEST_TMP/lego-badeab.log")"
fi
check "the wrong MAC key made no account" test "$(accounts)" = 0

eab=eab.$DNS_ZONE
if check "lego with --eab --kid --hmac obtains a certificate for $eab" \
	lego_run "$TEST_TMP/lego-eab.log" --path "$TEST_TMP/lego-eab" --eab --kid "$eab_kid" \
	--hmac "$eab_key" --dns rfc2136 --dns.resolvers "127.0.0.1:$NAMED_PORT" --dns.disable-cp \
	--domains "$eab" run; then
	check "the EAB certificate verifies with exactly $eab" \
		cert_is "$TEST_TMP/lego-eab/certificates/$eab.crt" "$eab"
	bound()
	{
		[ "$(sqlite3 "$ACMECA_DIR/ca.db" \
			"select count(*) from ca_accounts where eab_kid = '$eab_kid'")" = 1 ]
	}
	check "the CA bound the account to EAB key id $eab_kid" bound
else
	show_log "$ACMECA_LOG" 20
fi
check "no _acme-challenge TXT record is left after the EAB run" no_challenge_txt

# ---- the CA's own health: no sanitizer report, no server error ----

pid=$ACMECA_PID
acmeca_stop
check "acmera ca is stopped by PID" _pid_gone "$pid"
check "acmera ca's logs have no sanitizer report" no_sanitizer_report \
	"$TEST_TMP"/ca/ca.log "$TEST_TMP"/ca-eab/ca.log
check "acmera ca answered no request with a 5xx status" acmeca_no_5xx \
	"$TEST_TMP"/ca/ca.log "$TEST_TMP"/ca-eab/ca.log
finish
