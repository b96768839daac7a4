# shellcheck shell=bash
# Helpers for tests that drive the acmera binary. Source after common.sh, named.sh and
# pebble.sh.
#
#   make_csr DIR NAME [NAME...]   key DIR/NAME.key and CSR DIR/NAME.csr (P-256) for the names
#   acmera_config FILE [EXTRA...] a config pointing at the running named and Pebble; EXTRA
#                                 lines are appended as given (e.g. "[issuer]" "lease = 5")
#   verify_issued CERT CSR        the chain verifies to the CA's root ($ACME_ROOT, else
#                                 Pebble's), and the leaf carries
#                                 exactly the CSR's names and key (prints the difference)
#   txt_records NAME              TXT values of NAME served by named
#   zone_challenge_txt            every _acme-challenge TXT record left in the zone (AXFR)

make_csr()
{
	local dir=$1 first=$2 san="" n
	shift
	for n in "$@"; do
		san="${san:+$san,}DNS:$n"
	done
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/$first.key" -out "$dir/$first.csr" -subj "/CN=$first" \
		-addext "subjectAltName=$san" 2>/dev/null
}

acmera_config()
{
	local file=$1 line
	shift
	{
		printf '[acme]\ndirectory = %s\nca_bundle = %s\n\n' "$ACME_DIRECTORY" "$ACME_CA_BUNDLE"
		printf '[dns]\nserver = 127.0.0.1:%s\ntsig_keyfile = %s\nzone = %s\ntimeout = 1000\n\n' \
			"$NAMED_PORT" "$TSIG_KEYFILE" "$DNS_ZONE"
		printf '[store]\npath = %s\n\n' "${ACMERA_STATE:-$TEST_TMP/acmera.db}"
		for line in "$@"; do
			printf '%s\n' "$line"
		done
	} >"$file"
}

# The sorted DNS names of a certificate or CSR, one per line.
_names_of()
{
	local kind=$1 file=$2
	openssl "$kind" -in "$file" -noout -text 2>/dev/null |
		grep -A1 'Subject Alternative Name' | tail -n 1 | tr ',' '\n' |
		sed -n 's/^ *DNS://p' | sort
}

verify_issued()
{
	local cert=$1 csr=$2 leaf chain
	leaf=$(mktemp "$TEST_TMP/leaf.XXXXXX")
	chain=$(mktemp "$TEST_TMP/chain.XXXXXX")
	awk 'BEGIN{n=0} /BEGIN CERT/{n++} n==1{print}' "$cert" >"$leaf"
	awk 'BEGIN{n=0} /BEGIN CERT/{n++} n>1{print}' "$cert" >"$chain"
	local root=${ACME_ROOT:-$PEBBLE_ROOT}
	if ! openssl verify -CAfile "$root" -untrusted "$chain" "$leaf" >/dev/null 2>&1; then
		echo "$cert does not verify to the CA's root ($root)"
		openssl verify -CAfile "$root" -untrusted "$chain" "$leaf" 2>&1 | tail -n 3
		return 1
	fi
	if [ "$(_names_of x509 "$leaf")" != "$(_names_of req "$csr")" ]; then
		echo "names differ: cert [$(_names_of x509 "$leaf" | xargs)] csr [$(_names_of req "$csr" | xargs)]"
		return 1
	fi
	if [ "$(openssl x509 -in "$leaf" -noout -pubkey)" != "$(openssl req -in "$csr" -noout -pubkey)" ]; then
		echo "public key of $cert differs from $csr"
		return 1
	fi
	return 0
}

txt_records()
{
	dig +short +norecurse @127.0.0.1 -p "$NAMED_PORT" TXT "$1" 2>/dev/null
}

zone_challenge_txt()
{
	dig +noall +answer @127.0.0.1 -p "$NAMED_PORT" AXFR "$DNS_ZONE" -y "$(_tsig_dig_arg)" 2>/dev/null |
		awk '$4 == "TXT" && $1 ~ /^_acme-challenge\./'
}

# hmac-sha256:name:secret for dig -y, from the test key file.
_tsig_dig_arg()
{
	local name alg secret
	name=$(sed -n 's/^key "\([^"]*\)".*/\1/p' "$TSIG_KEYFILE" | head -n 1)
	alg=$(sed -n 's/.*algorithm \([^;]*\);.*/\1/p' "$TSIG_KEYFILE" | head -n 1)
	secret=$(sed -n 's/.*secret "\([^"]*\)".*/\1/p' "$TSIG_KEYFILE" | head -n 1)
	printf '%s:%s:%s' "$alg" "$name" "$secret"
}
