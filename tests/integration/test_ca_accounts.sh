#!/usr/bin/env bash
# `acmera ca` account management (RFC 8555 7.3, issue 4), the parts no real client exercises:
# keyChange (7.3.5: the new key works, the old one no longer does, a key another account has
# answers 409 with that account's Location, a spoiled inner JWS is refused), contact update
# (7.3.2: mailto only; a request's "status": "valid" and "orders" are ignored), deactivation
# (7.3.6: then every request of the account is refused with unauthorized) and the orders list
# (7.1.2.1: exactly the account's orders, 50 a page with a Link rel="next").
# The answers are checked against the rows of $ACMECA_DIR/ca.db: a refused request changes
# nothing. The client is lib/acme_jws.py (Debian's python3 with python3-josepy).
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

ZONE=accounts.acmera.test
named_start "$TEST_TMP/named" "$ZONE" || bail "named starts"
acmeca_start "$TEST_TMP/ca" || bail "acmera ca starts"

STATE=$TEST_TMP/client.json
jws()
{
	"$PY" "$here/lib/acme_jws.py" "$STATE" "$@"
}
jws init "$ACME_DIRECTORY" "$ACME_CA_BUNDLE" || bail "acme_jws.py init"

db()
{
	sqlite3 "$ACMECA_DIR/ca.db" "$@"
}

# The id of an account or order URL (its last path segment).
id_of()
{
	printf '%s\n' "${1##*/}"
}

# The account row: status, contact, thumbprint and jwk.
acct_row()
{
	db "select status || '|' || coalesce(contact, '') || '|' || thumbprint || '|' || jwk
		from ca_accounts where id = '$(id_of "$1")'"
}

# ask OUT ARGS...: run `acme_jws.py ARGS` (post, lookup, keychange); its four lines go to
# OUT.line OUT.loc OUT.next OUT.body (files under $TEST_TMP), empty when it did not run.
ask()
{
	local out=$TEST_TMP/$1 res
	shift
	res=$(jws "$@" 2>"$out.err") || res=
	sed -n 1p <<<"$res" >"$out.line"
	sed -n 2p <<<"$res" >"$out.loc"
	sed -n 3p <<<"$res" >"$out.next"
	sed -n 4p <<<"$res" >"$out.body"
}

# answered DESC OUT STATUS TYPE: the answer of `ask OUT` was STATUS with problem TYPE ("-":
# no problem) and a Replay-Nonce.
answered()
{
	local desc=$1 out=$TEST_TMP/$2 want got
	want="$3 $4 nonce"
	got=$(cat "$out.line")
	if [ "${got% *}" = "$want" ]; then
		ok "$desc: $3 $4"
	else
		fail "$desc: $3 $4" "answered: ${got:-nothing} $(head -c 300 "$out.body")
$(tail -n 3 "$out.err")"
	fi
}

# body_field OUT EXPR: a jq-free look into the JSON body of `ask OUT` (python expression on d).
body_field()
{
	"$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$TEST_TMP/$1.body" "$2" 2>/dev/null
}

# refused DESC STATUS TYPE ACCOUNT_URL ARGS...: `acme_jws.py ARGS` is answered STATUS TYPE and
# leaves ACCOUNT_URL's row (and the count of accounts and orders) as it was.
refused()
{
	local desc=$1 status=$2 type=$3 url=$4 before after
	shift 4
	before="$(acct_row "$url") $(db 'select count(*) from ca_accounts; select count(*) from ca_orders')"
	ask r "$@"
	after="$(acct_row "$url") $(db 'select count(*) from ca_accounts; select count(*) from ca_orders')"
	answered "$desc" r "$status" "$type"
	if [ -n "$before" ] && [ "$before" = "$after" ]; then
		ok "$desc: the store is unchanged"
	else
		fail "$desc: the store is unchanged" "before: $before
after: $after"
	fi
}

# ---- set-up: accounts alice, bob, carol ----

for who in alice bob carol; do
	line=$(jws account "$who") || bail "acme_jws.py account $who runs"
	check "account $who is created (201)" test "${line% *}" = "201 - nonce" || bail "no account $who"
done
kid()
{
	"$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["accounts"][sys.argv[2]]["kid"])' \
		"$STATE" "$1"
}
ALICE=$(kid alice) BOB=$(kid bob) CAROL=$(kid carol)
check "the three accounts have three URLs and rows" test \
	"$(printf '%s\n' "$ALICE" "$BOB" "$CAROL" | sort -u | wc -l) $(db 'select count(*) from ca_accounts')" = "3 3"

# ---- the orders list (RFC 8555 7.1.2.1) ----

ask a post alice acct get
answered "alice reads her account (POST-as-GET)" a 200 -
check "the account object names its orders list URL" test "$(body_field a 'd["orders"]')" = "$ALICE/orders"

ask l post alice orders get
answered "alice's orders list with no order" l 200 -
check "it is empty" test "$(body_field l 'len(d["orders"])')" = 0

jws orders alice 3 "$DNS_ZONE" first >"$TEST_TMP/first.urls" 2>"$TEST_TMP/first.err"
check "alice creates 3 orders" test "$(sort -u "$TEST_TMP/first.urls" | wc -l)" = 3
jws orders bob 1 "$DNS_ZONE" bobs >"$TEST_TMP/bob.urls" 2>"$TEST_TMP/bob.err"
check "bob creates 1 order" test "$(wc -l <"$TEST_TMP/bob.urls")" = 1

ask l post alice orders get
answered "alice's orders list" l 200 -
body_field l '"\n".join(sorted(d["orders"]))' >"$TEST_TMP/listed"
check "it lists exactly her 3 order URLs" diff <(sort "$TEST_TMP/first.urls") "$TEST_TMP/listed"
check "one page only: no Link rel=\"next\"" test "$(cat "$TEST_TMP/l.next")" = -
check "the list matches the 3 order rows of alice" test \
	"$(db "select count(*) from ca_orders where account = '$(id_of "$ALICE")'")" = 3
ask l post bob orders get
check "bob's list is his 1 order" test "$(body_field l '"\n".join(d["orders"])')" = \
	"$(cat "$TEST_TMP/bob.urls")"
refused "bob reading alice's orders list" 403 unauthorized "$ALICE" post bob "$ALICE/orders" get

# 50 a page: 47 more orders make 50 (one page, no next), one more makes 51 (two pages).
jws orders alice 47 "$DNS_ZONE" more >"$TEST_TMP/more.urls" 2>"$TEST_TMP/more.err"
check "alice creates 47 more orders" test "$(wc -l <"$TEST_TMP/more.urls")" = 47
ask l post alice orders get
check "with 50 orders the list is one page of 50 and no next" test \
	"$(body_field l 'len(d["orders"])') $(cat "$TEST_TMP/l.next")" = "50 -"
jws orders alice 1 "$DNS_ZONE" last >"$TEST_TMP/last.urls" 2>"$TEST_TMP/last.err"
check "alice creates her 51st order" test "$(wc -l <"$TEST_TMP/last.urls")" = 1
cat "$TEST_TMP/first.urls" "$TEST_TMP/more.urls" "$TEST_TMP/last.urls" | sort >"$TEST_TMP/all.urls"
ask p1 post alice orders get
answered "page 1 of 51 orders" p1 200 -
next=$(cat "$TEST_TMP/p1.next")
check "page 1 has 50 URLs" test "$(body_field p1 'len(d["orders"])')" = 50
check "page 1 links rel=\"next\" to a page 2 of this account" test "$next" = "$ALICE/orders/2"
if [ -n "$next" ] && [ "$next" != - ]; then
	ask p2 post alice "$next" get
	answered "page 2" p2 200 -
	check "page 2 has 1 URL and no next" test \
		"$(body_field p2 'len(d["orders"])') $(cat "$TEST_TMP/p2.next")" = "1 -"
	{
		body_field p1 '"\n".join(d["orders"])'
		body_field p2 '"\n".join(d["orders"])'
	} | sort >"$TEST_TMP/paged.urls"
	check "pages 1 and 2 together list each of the 51 orders once" \
		diff "$TEST_TMP/all.urls" "$TEST_TMP/paged.urls"
else
	fail "page 2 is read" "no next link: $(cat "$TEST_TMP/p1.line")"
fi

# ---- contact update (RFC 8555 7.3.2) ----

ask u post alice acct '{"contact": ["mailto:ops@example.org", "mailto:pki@example.org"]}'
answered "alice updates her contact" u 200 -
check "the answer shows the new contact" test "$(body_field u '",".join(d["contact"])')" = \
	"mailto:ops@example.org,mailto:pki@example.org"
check "the row has the new contact" test \
	"$(db "select contact from ca_accounts where id = '$(id_of "$ALICE")'")" = \
	'["mailto:ops@example.org","mailto:pki@example.org"]'
ask a post alice acct get
check "a POST-as-GET shows it too" test "$(body_field a '",".join(d["contact"])')" = \
	"mailto:ops@example.org,mailto:pki@example.org"

refused "a tel: contact" 400 unsupportedContact "$ALICE" post alice acct \
	'{"contact": ["tel:+15555550100"]}'
refused "an https: contact next to a good mailto:" 400 unsupportedContact "$ALICE" post alice acct \
	'{"contact": ["mailto:ok@example.org", "https://example.org/contact"]}'
refused "a mailto: with hfields" 400 invalidContact "$ALICE" post alice acct \
	'{"contact": ["mailto:ops@example.org?subject=hi"]}'
refused "a mailto: with two addresses" 400 invalidContact "$ALICE" post alice acct \
	'{"contact": ["mailto:a@example.org,b@example.org"]}'
refused "a mailto: without an address" 400 invalidContact "$ALICE" post alice acct \
	'{"contact": ["mailto:nobody"]}'
refused "a contact that is not an array" 400 malformed "$ALICE" post alice acct \
	'{"contact": "mailto:ops@example.org"}'
refused "bob updating alice's account" 403 unauthorized "$ALICE" post bob "$ALICE" \
	'{"contact": ["mailto:bob@example.org"]}'

# RFC 8555 7.3.2: "status" (but deactivation), "orders" and "termsOfServiceAgreed" are
# ignored; a client that sends back the account object it got (status "valid") is served.
ask u post alice acct '{"status": "valid", "orders": "https://example.org/x",
	"termsOfServiceAgreed": false, "contact": ["mailto:ops@example.org"]}'
answered "an update carrying the account object's status valid and orders" u 200 -
check "its contact is applied, its status and orders ignored" test \
	"$(db "select status || ' ' || contact from ca_accounts where id = '$(id_of "$ALICE")'") $(body_field u 'd["orders"]')" = \
	"valid [\"mailto:ops@example.org\"] $ALICE/orders"
ask u post alice acct '{"contact": []}'
answered "alice removes all her contacts" u 200 -
check "the row's contact is the empty list" test \
	"$(db "select contact from ca_accounts where id = '$(id_of "$ALICE")'")" = '[]'

# ---- keyChange (RFC 8555 7.3.5) ----

jws orders alice 1 "$DNS_ZONE" before-roll >"$TEST_TMP/roll.urls" 2>"$TEST_TMP/roll.err"
check "alice has a pending order before the key change" test \
	"$(db "select status from ca_orders where id = '$(id_of "$(cat "$TEST_TMP/roll.urls")")'")" = pending

refused "a keyChange whose inner url is not the outer url" 400 malformed "$ALICE" \
	keychange alice wrong-url
refused "a keyChange whose oldKey is not the account key" 400 malformed "$ALICE" \
	keychange alice wrong-oldkey
refused "a keyChange whose account is another URL" 400 malformed "$ALICE" \
	keychange alice wrong-account
refused "a keyChange whose inner JWS has a nonce" 400 malformed "$ALICE" \
	keychange alice inner-nonce
refused "a keyChange whose inner JWS has a kid, no jwk" 400 malformed "$ALICE" \
	keychange alice inner-kid
refused "a keyChange whose inner JWS does not verify with its jwk" 400 malformed "$ALICE" \
	keychange alice inner-bad-signature
refused "a keyChange to bob's key" 409 conflict "$ALICE" keychange alice taken=bob
check "the 409 names bob's account in Location" test "$(cat "$TEST_TMP/r.loc")" = "$BOB"
refused "a keyChange to alice's own key" 409 conflict "$ALICE" keychange alice taken=alice
check "that 409 names alice's account in Location" test "$(cat "$TEST_TMP/r.loc")" = "$ALICE"
check "bob still has his own key" test "$(acct_row "$BOB" | cut -d'|' -f1)" = valid

before=$(acct_row "$ALICE")
ask k keychange alice new
answered "alice rolls her account key" k 200 -
check "the keyChange answer is her account (Location, status valid)" test \
	"$(cat "$TEST_TMP/k.loc") $(body_field k 'd["status"]')" = "$ALICE valid"
after=$(acct_row "$ALICE")
check "the row's thumbprint and jwk changed, its status and contact did not" test \
	"$(cut -d'|' -f1,2 <<<"$before")" = "$(cut -d'|' -f1,2 <<<"$after")" -a \
	"$(cut -d'|' -f3 <<<"$before")" != "$(cut -d'|' -f3 <<<"$after")" -a \
	"$(cut -d'|' -f4 <<<"$before")" != "$(cut -d'|' -f4 <<<"$after")"
check "still 3 accounts" test "$(db 'select count(*) from ca_accounts')" = 3

# The old key: its signatures no longer verify under alice's kid (malformed, like any JWS
# whose signature fails), and no account has it any more.
refused "a request of alice signed by the old key" 400 malformed "$ALICE" post alice.old acct get
refused "a newOrder signed by the old key" 400 malformed "$ALICE" post alice.old newOrder \
	"{\"identifiers\": [{\"type\": \"dns\", \"value\": \"old.$DNS_ZONE\"}]}"
refused "a keyChange signed by the old key" 400 malformed "$ALICE" keychange alice.old new
refused "newAccount onlyReturnExisting with the old key" 400 accountDoesNotExist "$ALICE" \
	lookup alice.old

# The new key.
ask n lookup alice
answered "newAccount onlyReturnExisting with the new key" n 200 -
check "it returns alice's account URL" test "$(cat "$TEST_TMP/n.loc")" = "$ALICE"
ask a post alice acct get
answered "alice reads her account with the new key" a 200 -
ask o post alice newOrder "{\"identifiers\": [{\"type\": \"dns\", \"value\": \"new-key.$DNS_ZONE\"}]}"
answered "alice orders with the new key" o 201 -
check "the order made before the key change is still pending" test \
	"$(db "select status from ca_orders where id = '$(id_of "$(cat "$TEST_TMP/roll.urls")")'")" = pending
ask l post alice orders get
ask l2 post alice "$(cat "$TEST_TMP/l.next")" get
check "her orders list (53) keeps the old orders and has the new one" test \
	"$(body_field l 'len(d["orders"])')+$(body_field l2 'len(d["orders"])') $(body_field l2 \
	"'$(cat "$TEST_TMP/roll.urls")' in d['orders'] and '$(cat "$TEST_TMP/o.loc")' in d['orders']")" = \
	"50+3 True"

# ---- deactivation (RFC 8555 7.3.6) ----

ask d post carol acct '{"status": "deactivated"}'
answered "carol deactivates her account" d 200 -
check "the answer's status is deactivated" test "$(body_field d 'd["status"]')" = deactivated
check "the row's status is deactivated" test "$(acct_row "$CAROL" | cut -d'|' -f1)" = deactivated
refused "carol reads her account" 401 unauthorized "$CAROL" post carol acct get
refused "carol orders" 401 unauthorized "$CAROL" post carol newOrder \
	"{\"identifiers\": [{\"type\": \"dns\", \"value\": \"carol.$DNS_ZONE\"}]}"
refused "carol reads her orders list" 401 unauthorized "$CAROL" post carol orders get
refused "carol updates her contact" 401 unauthorized "$CAROL" post carol acct \
	'{"contact": ["mailto:carol@example.org"]}'
refused "carol deactivates again" 401 unauthorized "$CAROL" post carol acct \
	'{"status": "deactivated"}'
refused "carol changes her key" 401 unauthorized "$CAROL" keychange carol new
refused "newAccount with carol's key" 401 unauthorized "$CAROL" lookup carol
check "the row is still deactivated" test "$(acct_row "$CAROL" | cut -d'|' -f1)" = deactivated
refused "a status other than deactivated" 400 malformed "$BOB" post bob acct '{"status": "revoked"}'
ask b post bob acct get
answered "bob is not touched by carol's deactivation" b 200 -

pid=$ACMECA_PID
acmeca_stop
check "acmera ca is stopped by PID" _pid_gone "$pid"
check "acmera ca's log has no sanitizer report" no_sanitizer_report "$ACMECA_LOG"
check "acmera ca answered no request with a 5xx status" acmeca_no_5xx "$ACMECA_LOG"
finish
