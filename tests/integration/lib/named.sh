# shellcheck shell=bash
# BIND 9 `named` (Debian's bind9, 9.18) as the DNS peer on 127.0.0.1: an authoritative
# primary for one zone that accepts RFC 2136 UPDATEs signed with a TSIG key, restricted to
# TXT records at _acme-challenge names. Source after common.sh:
#
#   free_port                 print a port free for both TCP and UDP on 127.0.0.1
#   named_start DIR ZONE      start named for ZONE with all its files in DIR
#   named_stop                stop named (and its update-policy helper) by PID
#   named_restart             start it again (after named_stop) on the same port and keys
#   named_count_updates       how many UPDATE messages for ZONE named processed so far
#
# named_start exports:
#   NAMED_PID NAMED_PORT NAMED_DIR NAMED_LOG DNS_ZONE
#   TSIG_KEYFILE        DIR/tsig.key, key "acmera-test" (hmac-sha256, mode 0600), known to
#                       named and allowed to change _acme-challenge TXT records of ZONE
#   WRONG_TSIG_KEYFILE  DIR/wrong.key, key "wrong-key" (mode 0600), unknown to named
#
# The update-policy. BIND 9.18 has no built-in rule type that matches "a name whose first
# label is _acme-challenge, anywhere in the zone": `name` matches one name, `subdomain`,
# `zonesub` and `wildcard` match whole subtrees (so any TXT in the zone), and the self* types
# tie the name to the key's name. The exact rule is therefore `external`: named asks a small
# helper over a UNIX socket for each record, and the helper grants only TXT records at
# _acme-challenge names signed by acmera-test. See docs/bind-update-policy.md.
#
#   update-policy { grant "local:DIR/update-policy.sock" external * TXT; };
#
# Counting updates: the `update` category is logged at debug 8 to DIR/named.log. Every
# UPDATE that passes the TSIG check and reaches the zone logs exactly one of
#   ... updating zone 'ZONE/IN': update section prescan OK      (allowed, then applied)
#   ... updating zone 'ZONE/IN': update failed: <reason>        (refused by the policy, ...)
# named_count_updates counts these lines. An UPDATE rejected before the zone (bad or unknown
# TSIG key: BADSIG/BADKEY) is not counted; neither are queries.
#
# Debian: named runs here as root in the foreground (-f, no -u), with its working
# directory, pid file, session key, managed keys, journal and logs all in DIR; it needs
# nothing under /etc/bind or /var/cache/bind. The packaged AppArmor profile confines
# /usr/sbin/named to /etc/bind and /var/cache/bind; where AppArmor is enforcing, a DIR under
# /tmp is refused (named.out then shows "permission denied"): put the profile in complain
# mode (aa-complain /usr/sbin/named) on such a machine.

_NAMED_CLEANUP=0

# free_port: a port on 127.0.0.1 that could be bound for both TCP and UDP just now.
free_port()
{
	python3 - <<'EOF'
import socket, sys
for _ in range(50):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        u.close()
        t.close()
    print(port)
    sys.exit(0)
sys.exit(1)
EOF
}

# _named_policy_helper PATH: the `external` update-policy helper (BIND's protocol: a request
# of version, length, then NUL-terminated signer, name, address, type, key, and a 4-byte
# token length; the reply is 4 bytes, 1 grant, 0 deny). Grants TXT at _acme-challenge.*
# for signer acmera-test only.
_named_policy_helper()
{
	cat >"$1" <<'EOF'
import os, socket, struct, sys

path, signer_ok = sys.argv[1], sys.argv[2].rstrip(".").lower()
try:
    os.unlink(path)
except FileNotFoundError:
    pass
# Bind and listen under a temporary name, then rename: the socket appears at its
# path only once it accepts connections (named_start waits for the path).
tmp = path + ".new"
try:
    os.unlink(tmp)
except FileNotFoundError:
    pass
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(tmp)
os.chmod(tmp, 0o600)
srv.listen(64)
os.rename(tmp, path)
while True:
    conn, _ = srv.accept()
    with conn:
        conn.settimeout(5)
        data = b""
        try:
            while len(data) < 8 or len(data) < struct.unpack("!I", data[4:8])[0]:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            continue
        grant = 0
        fields = data[8:].split(b"\0")
        if len(data) >= 8 and struct.unpack("!I", data[:4])[0] == 1 and len(fields) >= 4:
            signer, name, _addr, rtype = (f.decode("ascii", "replace") for f in fields[:4])
            labels = name.rstrip(".").lower().split(".")
            grant = int(signer.rstrip(".").lower() == signer_ok and rtype == "TXT"
                        and len(labels) >= 2 and labels[0] == "_acme-challenge")
            print("policy: %s %s %s -> %s" % (signer, name, rtype, "grant" if grant else "deny"),
                  flush=True)
        try:
            conn.sendall(struct.pack("!I", grant))
        except OSError:
            pass
EOF
}

# _named_config DIR ZONE PORT: named.conf with everything under DIR.
_named_config()
{
	local d=$1 zone=$2 port=$3
	cat >"$d/named.conf" <<EOF
include "$d/tsig.key";

options {
	directory "$d";
	pid-file "$d/named.pid";
	session-keyfile "$d/session.key";
	managed-keys-directory "$d";
	listen-on port $port { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
	allow-transfer { none; };
};

controls { };

logging {
	channel main {
		file "$d/named.log";
		print-time yes;
		print-category yes;
		print-severity yes;
		severity info;
	};
	channel updates {
		file "$d/named.log";
		print-time yes;
		print-category yes;
		severity debug 8;
	};
	category default { main; };
	category update { updates; };
	category update-security { main; };
	category security { main; };
};

zone "$zone" {
	type primary;
	file "$d/$zone.db";
	update-policy { grant "local:$d/update-policy.sock" external * TXT; };
};
EOF
	cat >"$d/$zone.db" <<EOF
\$TTL 60
@	IN SOA ns1.$zone. hostmaster.$zone. 1 60 60 600 60
@	IN NS ns1.$zone.
ns1	IN A 127.0.0.1
*	IN A 127.0.0.1
EOF
}

# _named_wait_ready SECONDS: until named answers the zone's SOA; early exit if it dies.
_named_wait_ready()
{
	local deadline=$(($(now_ms) + $1 * 1000))
	until [ -n "$(dig +short +time=1 +tries=1 @127.0.0.1 -p "$NAMED_PORT" "$DNS_ZONE" SOA \
		2>/dev/null)" ]; do
		if _pid_gone "$NAMED_PID"; then
			note "named (pid $NAMED_PID) exited during start-up"
			return 1
		fi
		if [ "$(now_ms)" -ge "$deadline" ]; then
			note "timed out after $1s waiting for named to answer $DNS_ZONE SOA"
			return 1
		fi
		sleep 0.1
	done
}

# named_start DIR ZONE: returns 0 when named answers for ZONE, else 1 (with its log shown).
named_start()
{
	local dir=${1:?named_start DIR ZONE} zone=${2:?named_start DIR ZONE} i
	mkdir -p "$dir" && NAMED_DIR=$(cd "$dir" && pwd) || return 1
	DNS_ZONE=${zone%.}
	NAMED_LOG=$NAMED_DIR/named.log
	TSIG_KEYFILE=$NAMED_DIR/tsig.key
	WRONG_TSIG_KEYFILE=$NAMED_DIR/wrong.key
	export NAMED_DIR NAMED_LOG DNS_ZONE TSIG_KEYFILE WRONG_TSIG_KEYFILE
	(umask 077 && tsig-keygen -a hmac-sha256 acmera-test >"$TSIG_KEYFILE" &&
		tsig-keygen -a hmac-sha256 wrong-key >"$WRONG_TSIG_KEYFILE") || return 1
	chmod 600 "$TSIG_KEYFILE" "$WRONG_TSIG_KEYFILE"
	if grep -qs '^named (enforce)' /sys/kernel/security/apparmor/profiles; then
		note "AppArmor enforces the named profile: files in $NAMED_DIR may be refused"
	fi
	NAMED_PORT=$(free_port) || { note "named_start: no free port"; return 1; }
	export NAMED_PORT
	_named_config "$NAMED_DIR" "$DNS_ZONE" "$NAMED_PORT"
	_named_policy_helper "$NAMED_DIR/update-policy.py"
	: >"$NAMED_LOG"

	if [ "$_NAMED_CLEANUP" = 0 ]; then
		on_exit named_stop
		_NAMED_CLEANUP=1
	fi
	_named_launch
}

# _named_launch: start the policy helper and named on the prepared files and port.
_named_launch()
{
	local i
	rm -f "$NAMED_DIR/update-policy.sock"
	python3 "$NAMED_DIR/update-policy.py" "$NAMED_DIR/update-policy.sock" acmera-test \
		>>"$NAMED_DIR/update-policy.log" 2>&1 &
	NAMED_POLICY_PID=$!
	for ((i = 0; i < 100; i++)); do
		[ -S "$NAMED_DIR/update-policy.sock" ] && break
		sleep 0.05
	done
	if [ ! -S "$NAMED_DIR/update-policy.sock" ]; then
		note "the update-policy helper did not create its socket"
		show_log "$NAMED_DIR/update-policy.log" 20
		return 1
	fi
	named -f -c "$NAMED_DIR/named.conf" >>"$NAMED_DIR/named.out" 2>&1 &
	NAMED_PID=$!
	export NAMED_PID
	if ! _named_wait_ready 20; then
		show_log "$NAMED_DIR/named.out" 20
		show_log "$NAMED_LOG" 20
		return 1
	fi
	# named answers queries a moment before it applies updates (SERVFAIL meanwhile).
	if ! wait_for "named to take updates" 20 _named_takes_updates; then
		show_log "$NAMED_LOG" 20
		return 1
	fi
	return 0
}

# _named_takes_updates: a throwaway TXT record goes in and out with the test key (before
# any caller reads named_count_updates, which counts differences).
_named_takes_updates()
{
	printf 'server 127.0.0.1 %s\nzone %s\nupdate add _acme-challenge.named-ready.%s 60 TXT "ready"\nsend\nupdate delete _acme-challenge.named-ready.%s TXT "ready"\nsend\n' \
		"$NAMED_PORT" "$DNS_ZONE" "$DNS_ZONE" "$DNS_ZONE" | nsupdate -k "$TSIG_KEYFILE" -t 2 >/dev/null 2>&1
}

# named_restart: start named again after named_stop, on the same port with the same keys;
# the zone keeps the updates it took (named's journal).
named_restart()
{
	named_stop
	_named_launch
}

# named_stop: stop named and the policy helper by PID (no-op when not running).
named_stop()
{
	if [ -n "${NAMED_PID:-}" ]; then
		stop_pid "$NAMED_PID"
		NAMED_PID=
	fi
	if [ -n "${NAMED_POLICY_PID:-}" ]; then
		stop_pid "$NAMED_POLICY_PID"
		NAMED_POLICY_PID=
	fi
}

# named_count_updates: UPDATE messages for DNS_ZONE that reached the zone (see above).
named_count_updates()
{
	local n
	n=$(grep -c -E "updating zone '${DNS_ZONE//./\\.}/IN': (update section prescan OK|update failed: )" \
		"$NAMED_LOG" 2>/dev/null) || true
	printf '%s\n' "${n:-0}"
}
