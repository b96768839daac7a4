#!/usr/bin/env bash
# The HTTPS server of src/http (libevent evhttp over bufferevent_openssl), driven through
# tests/http/http_echo by curl, openssl and a small Python TLS client (for exact timing and
# raw bytes): TLS 1.2 and 1.3, keep-alive, size limits, client certificates, channel
# bindings, deferred answers, the handshake/head/idle clocks, max_connections, two workers
# and one write per response.
#
# Behaviour these checks pin down (libevent 2.1 evhttp decides the error statuses):
#   - a body over max_body gets 413; a header block over max_headers gets 400 (evhttp
#     reports it as a malformed head, there is no 431); a bad request line gets 400; a
#     method outside GET/POST/HEAD/PUT/DELETE gets 501.
#   - client certificates are requested, not required: an unknown one still completes the
#     handshake and the handler sees verified=0.
#   - at max_connections a worker stops accepting: the next client's TCP connect succeeds
#     but its TLS handshake waits in the accept queue until a connection closes.
#   - the handshake and the request head have absolute deadlines (dripping bytes does not
#     extend them); a connection is dropped without an answer when one passes.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

need openssl curl python3

ECHO=$ACMERA_BUILD/tests/http/http_echo
[ -x "$ECHO" ] || bail "http_echo is built" "missing: $ECHO"

# ---- PKI: a CA, the server's certificate, a client of the CA and a stranger ----
PKI=$TEST_TMP/pki
mkdir -p "$PKI"
make_pki()
{
	local k="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
	cd "$PKI" || return 1
	# shellcheck disable=SC2086
	openssl req -x509 $k -keyout ca.key -out ca.pem -days 2 -subj "/CN=Test CA" &&
		openssl req $k -keyout server.key -out server.csr -subj "/CN=localhost" &&
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext &&
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
			-out server.pem -days 2 -extfile server.ext &&
		openssl req $k -keyout client.key -out client.csr -subj "/CN=client1" &&
		openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
			-out client.pem -days 2 &&
		openssl req -x509 $k -keyout stranger.key -out stranger.pem -days 2 \
			-subj "/CN=stranger" &&
		chmod 600 ./*.key
}
(make_pki) >"$TEST_TMP/pki.log" 2>&1 || bail "test PKI is made" "$(tail -n 20 "$TEST_TMP/pki.log")"

# ---- a Python TLS client for what curl cannot do: raw bytes, exact clocks, held slots ----
PROBE=$TEST_TMP/probe.py
cat >"$PROBE" <<'EOF'
import select, socket, ssl, sys, time

ca, cmd, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
args = sys.argv[4:]

def tls():
    ctx = ssl.create_default_context(cafile=ca)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(s, server_hostname="127.0.0.1")

def closed(s, wait):
    """True when the server closed s within wait seconds."""
    r, _, _ = select.select([s], [], [], wait)
    if not r:
        return False
    try:
        return s.recv(4096) == b""
    except (ssl.SSLError, OSError):
        return True

def until_closed(s, t0, step=None, limit=10.0):
    """ms from t0 until the server closes s; step() runs every 100 ms meanwhile."""
    while time.monotonic() - t0 < limit:
        if closed(s, 0.1):
            return "closed %d" % ((time.monotonic() - t0) * 1000)
        if step:
            try:
                step()
            except (ssl.SSLError, OSError):
                return "closed %d" % ((time.monotonic() - t0) * 1000)
    return "open"

def unescape(text):
    return text.encode().decode("unicode_escape").encode("latin-1")

def read_all(s, limit=5.0):
    out, t0 = b"", time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - t0 < limit:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except (ssl.SSLError, OSError):
            break
        if not d:
            break
        out += d
    return out

if cmd == "raw":            # raw PORT TEXT: send TEXT (\r\n escapes), print the answer
    s = tls()
    s.sendall(unescape(args[0]))
    sys.stdout.write(read_all(s).decode("latin-1"))
elif cmd == "send-close":   # send-close PORT TEXT: send TEXT, close at once
    s = tls()
    s.sendall(unescape(args[0]))
    time.sleep(0.05)
    s.close()
elif cmd == "send-close-many":  # send-close-many PORT N TEXT: N connections send TEXT,
    conns = [tls() for _ in range(int(args[0]))]  # then all close together
    for s in conns:
        s.sendall(unescape(args[1]))
    time.sleep(0.05)
    for s in conns:
        s.close()
elif cmd == "silent":       # TCP connect, send nothing
    s = socket.create_connection(("127.0.0.1", port))
    print(until_closed(s, time.monotonic()))
elif cmd == "drip":         # a ClientHello record header, then one byte every 100 ms
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    s.sendall(b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03")
    print(until_closed(s, t0, lambda: s.sendall(b"\x00"), limit=4.0))
elif cmd == "handshaked":   # TLS handshake, then nothing
    s = tls()
    print(until_closed(s, time.monotonic()))
elif cmd == "slowhead":     # TLS, then a request head one line every 400 ms
    s = tls()
    t0 = time.monotonic()
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
    n = [0]
    def line():
        n[0] += 1
        if n[0] % 4 == 0:
            s.sendall(b"X-Slow: %d\r\n" % n[0])
    print(until_closed(s, t0, line, limit=6.0))
elif cmd == "idle":         # one request, then the keep-alive connection idles
    s = tls()
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(5)
    first = s.recv(65536)
    t0 = time.monotonic()
    print("answered" if first.startswith(b"HTTP/1.1 200") else "no answer", until_closed(s, t0))
elif cmd == "hold":         # hold N TLS connections open until killed
    held = [tls() for _ in range(int(args[0]))]
    print("held", len(held), flush=True)
    time.sleep(120)
EOF
probe()
{
	python3 "$PROBE" "$PKI/ca.pem" "$@"
}

# ---- servers ----

# echo_start NAME ARGS...: start http_echo with the test certificate (more options in ARGS);
# sets PORT and PID, logs in $TEST_TMP/NAME.log.
echo_start()
{
	local name=$1 out="$TEST_TMP/$1.out" i
	shift
	"$ECHO" --cert "$PKI/server.pem" --key "$PKI/server.key" "$@" >"$out" \
		2>"$TEST_TMP/$name.log" &
	PID=$!
	on_exit stop_pid "$PID"
	PORT=
	for ((i = 0; i < 100; i++)); do
		PORT=$(awk '/^port /{ print $2 }' "$out")
		[ -n "$PORT" ] && return 0
		_pid_gone "$PID" && break
		sleep 0.1
	done
	show_log "$TEST_TMP/$name.log"
	return 1
}

# echo_stop NAME PID: SIGTERM; the server must exit 0 with no sanitizer report.
echo_stop()
{
	local name=$1 pid=$2 rc=0 log="$TEST_TMP/$1.log"
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" || rc=$?
	if [ "$rc" -eq 0 ] && grep -q '^event=stopped' "$log" &&
		! grep -qE 'Sanitizer|runtime error' "$log"; then
		ok "http: $name server exits cleanly on SIGTERM"
	else
		fail "http: $name server exits cleanly on SIGTERM" "exit status $rc
$(tail -n 30 "$log")"
	fi
}

CURL=(curl -sS --max-time 10 --cacert "$PKI/ca.pem")

echo_start main --client-ca "$PKI/ca.pem" --max-body 4096 --max-headers 2048 ||
	bail "http_echo starts"
MAIN_PID=$PID
URL=https://127.0.0.1:$PORT
MAIN_PORT=$PORT

# ---- basics ----
out=$("${CURL[@]}" -H 'X-Test: hello' "$URL/echo" 2>&1)
if grep -qx 'method=GET' <<<"$out" && grep -qx 'path=/echo' <<<"$out" &&
	grep -qx 'header X-Test: hello' <<<"$out"; then
	ok "http: GET /echo answers with the request's method, path and headers"
else
	fail "http: GET /echo answers with the request's method, path and headers" "$out"
fi

head -c 4096 /dev/urandom >"$TEST_TMP/body4096"
"${CURL[@]}" --data-binary @"$TEST_TMP/body4096" -o "$TEST_TMP/echoed" "$URL/echo"
check "http: POST /echo returns a body of exactly max_body unchanged" \
	cmp "$TEST_TMP/body4096" "$TEST_TMP/echoed"

out=$("${CURL[@]}" -i "$URL/nowhere" 2>&1 | tr -d '\r')
if grep -q '^HTTP/1.1 404' <<<"$out" && grep -qx 'X-Echo: not found' <<<"$out" &&
	grep -qx 'Content-Length: 10' <<<"$out" && grep -qx 'Content-Type: text/plain' <<<"$out"; then
	ok "http: the handler's status, content type, extra header and Content-Length go out"
else
	fail "http: the handler's status, content type, extra header and Content-Length go out" "$out"
fi

# ---- TLS versions ----
for v in 1.2 1.3; do
	out=$("${CURL[@]}" -v --tlsv$v --tls-max $v -o /dev/null -w 'status=%{http_code}\n' \
		"$URL/echo" 2>&1)
	if grep -q 'status=200' <<<"$out" && grep -q "SSL connection using TLSv$v" <<<"$out"; then
		ok "http: TLS $v serves requests"
	else
		fail "http: TLS $v serves requests" "$(tail -n 15 <<<"$out")"
	fi
done
check_fails "http: TLS 1.1 is refused" \
	openssl s_client -connect "127.0.0.1:$PORT" -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' </dev/null

# ---- keep-alive ----
out=$("${CURL[@]}" -v "$URL/echo" "$URL/echo" 2>&1)
if grep -q 'Re-using existing connection' <<<"$out" &&
	[ "$(grep -c '^< HTTP/1.1 200' <<<"$out")" = 2 ]; then
	ok "http: keep-alive: two requests on one connection"
else
	fail "http: keep-alive: two requests on one connection" "$(grep -E '^[<*]' <<<"$out" | tail -n 20)"
fi

# ---- limits and malformed requests ----
head -c 4097 /dev/urandom >"$TEST_TMP/body4097"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' --data-binary @"$TEST_TMP/body4097" "$URL/echo")
[ "$code" = 413 ] && ok "http: a body over max_body gets 413" ||
	fail "http: a body over max_body gets 413" "status $code"

big=$(head -c 3000 /dev/zero | tr '\0' a)
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -H "X-Big: $big" "$URL/echo")
[ "$code" = 400 ] && ok "http: a header block over max_headers gets 400 (evhttp)" ||
	fail "http: a header block over max_headers gets 400 (evhttp)" "status $code"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -H "X-Big: ${big:0:1800}" "$URL/echo")
[ "$code" = 200 ] && ok "http: a header block under max_headers is served" ||
	fail "http: a header block under max_headers is served" "status $code"

# raw_status DESC WANT TEXT: the first line of the answer to raw request TEXT.
raw_status()
{
	local desc=$1 want=$2 out
	out=$(probe raw "$MAIN_PORT" "$3" 2>&1)
	if [[ $(head -n 1 <<<"$out") == "HTTP/1.1 $want"* ]]; then
		ok "$desc"
	else
		fail "$desc" "$(head -n 5 <<<"$out")"
	fi
}
raw_status "http: a malformed request line gets 400" 400 'GARBAGE\r\n\r\n'
raw_status "http: an unknown method gets 501" 501 'BREW /echo HTTP/1.1\r\nHost: x\r\n\r\n'
raw_status "http: a method outside GET/POST/HEAD/PUT/DELETE gets 501" 501 \
	'OPTIONS /echo HTTP/1.1\r\nHost: x\r\n\r\n'
raw_status "http: a path hiding a NUL byte (%00) gets 400" 400 \
	'GET /ec%00ho HTTP/1.1\r\nHost: x\r\n\r\n'
out=$(probe raw "$MAIN_PORT" \
	'GET /e%63ho?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' 2>&1)
grep -q '^path=/echo' <<<"$out" && ok "http: the handler sees the decoded path without its query" ||
	fail "http: the handler sees the decoded path without its query" "$out"

# ---- client certificates ----
out=$("${CURL[@]}" --cert "$PKI/client.pem" --key "$PKI/client.key" "$URL/cert" 2>&1)
grep -q '^subject=/CN=client1 verified=1' <<<"$out" &&
	ok "http: a client certificate of the client CA is seen as verified=1" ||
	fail "http: a client certificate of the client CA is seen as verified=1" "$out"
out=$("${CURL[@]}" --cert "$PKI/stranger.pem" --key "$PKI/stranger.key" "$URL/cert" 2>&1)
grep -q '^subject=/CN=stranger verified=0' <<<"$out" &&
	ok "http: an unknown client certificate completes the handshake with verified=0" ||
	fail "http: an unknown client certificate completes the handshake with verified=0" "$out"
out=$("${CURL[@]}" "$URL/cert" 2>&1)
grep -q '^subject=none verified=0 chain=0' <<<"$out" &&
	ok "http: without a client certificate the handler sees none" ||
	fail "http: without a client certificate the handler sees none" "$out"

# ---- channel bindings ----
# binding_check VERSION TYPE HEXLEN
binding_check()
{
	local a b desc="http: TLS $1 channel binding is $2 of $(($3 / 2)) bytes, new per connection"
	a=$("${CURL[@]}" --tlsv"$1" --tls-max "$1" "$URL/cb" 2>&1)
	b=$("${CURL[@]}" --tlsv"$1" --tls-max "$1" "$URL/cb" 2>&1)
	if [[ $a =~ ^type=$2\ hex=([0-9a-f]{$3})$ ]] && [[ $b =~ ^type=$2\ hex=[0-9a-f]{$3}$ ]] &&
		[ "$a" != "$b" ]; then
		ok "$desc"
	else
		fail "$desc" "$a
$b"
	fi
}
binding_check 1.2 tls-unique 24
binding_check 1.3 tls-exporter 64

# ---- deferred answers ----
t0=$(now_ms)
out=$("${CURL[@]}" "$URL/later" 2>&1)
dt=$(($(now_ms) - t0))
if [ "$out" = later ] && [ "$dt" -ge 300 ]; then
	ok "http: an answer given later from a timer arrives (${dt} ms)"
else
	fail "http: an answer given later from a timer arrives" "after $dt ms: $out"
fi
PIPELINED='GET /later HTTP/1.1\r\nHost: x\r\n\r\n'
PIPELINED+='GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
out=$(probe raw "$MAIN_PORT" "$PIPELINED" 2>&1)
if [ "$(grep -c '^HTTP/1.1 200' <<<"$out")" = 2 ] &&
	[ "$(grep -E '^(later|method=GET)$' <<<"$out" | tr '\n' ' ')" = "later method=GET " ]; then
	ok "http: a request pipelined behind a deferred one is answered after it"
else
	fail "http: a request pipelined behind a deferred one is answered after it" "$out"
fi
probe send-close "$MAIN_PORT" 'GET /later HTTP/1.1\r\nHost: x\r\n\r\n' >/dev/null 2>&1
if wait_for "the handler to hear the client left" 3 grep -q '^event=gone path=/later' \
	"$TEST_TMP/main.log"; then
	ok "http: a client leaving before a deferred answer reaches the handler's on_gone"
else
	fail "http: a client leaving before a deferred answer reaches the handler's on_gone" \
		"$(tail -n 10 "$TEST_TMP/main.log")"
fi
# More clients leave at once than one wake-up of the close watch takes (32): all are heard.
gone_count()
{
	grep -c '^event=gone path=/later' "$TEST_TMP/main.log"
}
gone_reached()
{
	[ "$(gone_count)" -ge "$1" ]
}
gone0=$(gone_count)
probe send-close-many "$MAIN_PORT" 40 'GET /later HTTP/1.1\r\nHost: x\r\n\r\n' >/dev/null 2>&1
if wait_for "40 more clients heard leaving" 3 gone_reached $((gone0 + 40)); then
	ok "http: 40 clients leaving at once before their deferred answers reach on_gone"
else
	fail "http: 40 clients leaving at once before their deferred answers reach on_gone" \
		"$(($(gone_count) - gone0)) of 40"
fi
sleep 0.5
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$URL/echo")
[ "$code" = 200 ] && ok "http: the server goes on serving after that" ||
	fail "http: the server goes on serving after that" "status $code"

# ---- one write per response (TLS 1.2: application data records start 17 03 03) ----
if command -v strace >/dev/null 2>&1; then
	strace -f -qq -xx -p "$MAIN_PID" -e trace=write,writev,sendmsg,sendto \
		-o "$TEST_TMP/strace.txt" 2>"$TEST_TMP/strace.log" &
	ST=$!
	on_exit stop_pid "$ST"
	sleep 1
	"${CURL[@]}" --tlsv1.2 --tls-max 1.2 -o /dev/null -o /dev/null "$URL/echo" "$URL/echo"
	head -c 3000 /dev/urandom >"$TEST_TMP/body3000"
	"${CURL[@]}" --tlsv1.2 --tls-max 1.2 -o /dev/null --data-binary @"$TEST_TMP/body3000" \
		"$URL/echo"
	sleep 0.5
	stop_pid "$ST"
	n=$(grep -cE '(write|writev|sendmsg|sendto)\(.*"\\x17\\x03\\x03' "$TEST_TMP/strace.txt")
	if [ "$n" = 3 ]; then
		ok "http: each response (head and body) leaves in one write"
	else
		fail "http: each response (head and body) leaves in one write" \
			"$n application data writes for 3 responses:
$(cut -c 1-120 "$TEST_TMP/strace.txt" | tail -n 20)"
	fi
else
	note "strace is not installed: the one-write check is skipped"
fi

echo_stop main "$MAIN_PID"

# ---- the clocks: handshake 1 s, request head 2 s, keep-alive idle 1 s ----
echo_start clocks --hs-timeout 1000 --header-timeout 2000 --idle-timeout 1000 ||
	bail "http_echo starts (short timeouts)"
CLOCKS_PID=$PID
# closes_in DESC LOW HIGH PROBE_ARGS...: the probe reports the server closing within [LOW, HIGH] ms.
closes_in()
{
	local desc=$1 low=$2 high=$3 out ms
	shift 3
	out=$(probe "$@" 2>&1)
	ms=$(sed -n 's/.*closed \([0-9]*\).*/\1/p' <<<"$out")
	if [ -n "$ms" ] && [ "$ms" -ge "$low" ] && [ "$ms" -le "$high" ] &&
		! grep -q 'no answer' <<<"$out"; then
		ok "$desc (${ms} ms)"
	else
		fail "$desc" "$out (expected closed within $low..$high ms)"
	fi
}
closes_in "http: a client that connects and sends nothing is dropped at the handshake timeout" \
	800 2500 silent "$PORT"
closes_in "http: a handshake dripping a byte every 100 ms is still dropped at its deadline" \
	800 2500 drip "$PORT"
closes_in "http: no request after the handshake: dropped at the head timeout" \
	1800 3500 handshaked "$PORT"
closes_in "http: a request head dripping a line every 400 ms is dropped at the head deadline" \
	1800 3500 slowhead "$PORT"
closes_in "http: an idle keep-alive connection closes after the idle timeout" 800 2500 idle "$PORT"
echo_stop clocks "$CLOCKS_PID"

# ---- max_connections: 2 on one worker ----
echo_start limit --max-conn 2 --workers 1 --header-timeout 30000 ||
	bail "http_echo starts (max_connections 2)"
LIMIT_PID=$PID
# Not through probe(): the PID must be Python's own, for stop_pid.
python3 "$PROBE" "$PKI/ca.pem" hold "$PORT" 2 >"$TEST_TMP/hold.out" 2>&1 &
HOLD=$!
on_exit stop_pid "$HOLD"
if wait_for "2 connections held" 10 grep -q '^held 2' "$TEST_TMP/hold.out"; then
	rc=0
	"${CURL[@]}" --max-time 1.5 -o /dev/null "https://127.0.0.1:$PORT/echo" 2>/dev/null || rc=$?
	[ "$rc" = 28 ] && ok "http: at max_connections a new client waits (curl timed out)" ||
		fail "http: at max_connections a new client waits (curl timed out)" "curl exit $rc"
	"${CURL[@]}" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$PORT/echo" \
		>"$TEST_TMP/waiting.out" 2>&1 &
	WAITING=$!
	on_exit stop_pid "$WAITING"
	sleep 0.5
	stop_pid "$HOLD"
	wait "$WAITING"
	code=$(cat "$TEST_TMP/waiting.out")
	[ "$code" = 200 ] && ok "http: a waiting client is served once a connection closes" ||
		fail "http: a waiting client is served once a connection closes" "$code"
else
	fail "http: at max_connections a new client waits" "$(cat "$TEST_TMP/hold.out")"
fi
echo_stop limit "$LIMIT_PID"

# ---- two workers (SO_REUSEPORT): both serve ----
echo_start workers --workers 2 || bail "http_echo starts (2 workers)"
WORKERS_PID=$PID
for i in $(seq 1 24); do
	"${CURL[@]}" "https://127.0.0.1:$PORT/echo" 2>/dev/null | sed -n 's/^thread=//p'
done | sort -u >"$TEST_TMP/threads"
n=$(wc -l <"$TEST_TMP/threads")
[ "$n" = 2 ] && ok "http: with workers=2 both workers serve connections" ||
	fail "http: with workers=2 both workers serve connections" \
		"serving threads seen: $(tr '\n' ' ' <"$TEST_TMP/threads")"
echo_stop workers "$WORKERS_PID"

# ---- refusals at start ----
chmod 644 "$PKI/stranger.key"
out=$("$ECHO" --cert "$PKI/stranger.pem" --key "$PKI/stranger.key" 2>&1)
grep -q 'lets others read it' <<<"$out" &&
	ok "http: a private key that others may read is refused" ||
	fail "http: a private key that others may read is refused" "$out"
out=$("$ECHO" --cert "$PKI/server.pem" --key "$PKI/client.key" 2>&1)
grep -q "key $PKI/client.key" <<<"$out" &&
	ok "http: a key that does not match the certificate is refused" ||
	fail "http: a key that does not match the certificate is refused" "$out"
out=$("$ECHO" --cert "$PKI/server.pem" --key "$PKI/server.key" --listen 127.0.0.1:99999 2>&1)
grep -q "listen '127.0.0.1:99999'" <<<"$out" &&
	ok "http: a bad listen address is refused with its name" ||
	fail "http: a bad listen address is refused with its name" "$out"

finish
