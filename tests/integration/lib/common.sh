# shellcheck shell=bash
# Shared helpers for tests/integration/test_*.sh. A test script starts with
#
#   #!/usr/bin/env bash
#   set -uo pipefail
#   . "$(dirname "$0")/lib/common.sh"
#
# and ends with `finish`. Do not use `set -e`: a failed check must not stop the script.
#
# Reporting: `ok NAME`, `fail NAME [DETAIL...]`, `check DESC CMD...`, `check_fails DESC CMD...`
# print TAP-like lines ("ok - NAME" / "not ok - NAME") that tests/run-integration counts.
# Anything else a script prints should go through `note` (lines starting with "# ").
#
# Processes: every process a script starts must be stopped by PID on any exit. Register that
# with `on_exit CMD [ARGS...]` right after starting it (stop_pid does the kill by PID). The
# registry runs in reverse order from the EXIT trap, also after a failure, Ctrl-C or the
# runner's timeout (SIGTERM).
#
# Files: $TEST_TMP is a private directory (mode 0700) removed on exit. With ACMERA_TEST_KEEP=1
# it is kept. When the script fails and ACMERA_TEST_ARTIFACTS names a directory (the runner
# sets it), the *.log files under $TEST_TMP are copied there first.
#
# Environment set by tests/run-integration (defaults for running a script by hand):
#   ACMERA_BUILD  absolute path of the build directory (default: <repo>/build)
#   ACMERA_BIN    the acmera binary (default: $ACMERA_BUILD/acmera)
#   ACMERA_SRC    the repository root (computed here)

[ -n "${_ACMERA_COMMON_SH:-}" ] && return 0
_ACMERA_COMMON_SH=1

ACMERA_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
ACMERA_BUILD=${ACMERA_BUILD:-$ACMERA_SRC/build}
ACMERA_BIN=${ACMERA_BIN:-$ACMERA_BUILD/acmera}
export ACMERA_SRC ACMERA_BUILD ACMERA_BIN

TEST_NAME=$(basename "$0" .sh)
T_PASSED=0
T_FAILED=0
_ON_EXIT=()

if ! TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/acmera-$TEST_NAME.XXXXXX"); then
	printf 'not ok - %s: cannot create a temporary directory\n' "$TEST_NAME"
	exit 1
fi
chmod 700 "$TEST_TMP"
export TEST_TMP

# note MSG...: a diagnostic line, never counted as a result.
note()
{
	printf '%s\n' "$*" | sed 's/^/# /'
}

# ok NAME: record a passed check.
ok()
{
	T_PASSED=$((T_PASSED + 1))
	printf 'ok - %s\n' "$1"
}

# fail NAME [DETAIL...]: record a failed check; DETAIL (may be multi-line) is shown as notes.
fail()
{
	T_FAILED=$((T_FAILED + 1))
	printf 'not ok - %s\n' "$1"
	shift
	if [ $# -gt 0 ] && [ -n "$*" ]; then
		printf '%s\n' "$*" | sed 's/^/#   /'
	fi
	return 0
}

# check DESC CMD...: run CMD; ok if it exits 0, else fail with its exit code and output tail.
# Returns CMD's exit status so a script can skip what depends on it.
check()
{
	local desc=$1 rc=0 out="$TEST_TMP/.check.out"
	shift
	"$@" >"$out" 2>&1 || rc=$?
	if [ "$rc" -eq 0 ]; then
		ok "$desc"
	else
		fail "$desc" "command: $*
exit status: $rc
$(tail -n 25 "$out")"
	fi
	return "$rc"
}

# check_fails DESC CMD...: ok if CMD exits non-zero (a refusal the test expects).
check_fails()
{
	local desc=$1 rc=0 out="$TEST_TMP/.check.out"
	shift
	"$@" >"$out" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		ok "$desc"
		return 0
	fi
	fail "$desc" "command succeeded but should have failed: $*
$(tail -n 25 "$out")"
	return 1
}

# show_log FILE [LINES]: print the tail of a log as notes (for a failure's context).
show_log()
{
	local file=$1 lines=${2:-30}
	if [ -f "$file" ]; then
		note "--- last $lines lines of $file"
		tail -n "$lines" "$file" | sed 's/^/# /'
	else
		note "--- $file does not exist"
	fi
}

# on_exit CMD [ARGS...]: run CMD when the script exits, however it exits (last registered
# runs first). Arguments are kept exactly as given.
on_exit()
{
	_ON_EXIT+=("$(printf '%q ' "$@")")
}

# _pid_gone PID: true when PID no longer exists or is a zombie waiting to be reaped.
_pid_gone()
{
	local state
	state=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
	[[ $state == Z* ]]
}

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (default 10), then SIGKILL; reaps the
# process when it is a child of this shell. Harmless when PID is empty or already gone.
stop_pid()
{
	local pid=${1:-} secs=${2:-10} i
	[ -n "$pid" ] || return 0
	if ! _pid_gone "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < secs * 10; i++)); do
			_pid_gone "$pid" && break
			sleep 0.1
		done
		if ! _pid_gone "$pid"; then
			note "pid $pid ignored SIGTERM for ${secs}s; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null
		fi
	fi
	wait "$pid" 2>/dev/null
	return 0
}

# now_ms: milliseconds since the epoch.
now_ms()
{
	date +%s%3N
}

# wait_for DESC SECONDS CMD...: poll CMD every 0.1 s until it exits 0 (returns 0) or SECONDS
# pass (prints a note, returns 1). Counts no result by itself.
wait_for()
{
	local desc=$1 secs=$2 deadline
	shift 2
	deadline=$(($(now_ms) + secs * 1000))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		if [ "$(now_ms)" -ge "$deadline" ]; then
			note "timed out after ${secs}s waiting for $desc"
			return 1
		fi
		sleep 0.1
	done
}

# need CMD...: bail out (one failure) when a required program is missing.
need()
{
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || bail "required program '$c' is installed"
	done
}

# finish: print this script's summary and exit 1 if any check failed (or none ran).
finish()
{
	if [ $((T_PASSED + T_FAILED)) -eq 0 ]; then
		fail "$TEST_NAME ran no check"
	fi
	printf '# %s: %d passed, %d failed\n' "$TEST_NAME" "$T_PASSED" "$T_FAILED"
	[ "$T_FAILED" -eq 0 ] && exit 0
	exit 1
}

# no_sanitizer_report LOG...: 0 when no log holds an ASan, LSan or UBSan report (in a
# sanitizer build the programs under test write them to their logs; leaks show at exit).
SANITIZER_RE='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:'
no_sanitizer_report()
{
	local f
	for f in "$@"; do
		[ -r "$f" ] || { echo "no log $f to look in" >&2; return 1; }
	done
	if grep -Eq "$SANITIZER_RE" "$@"; then
		grep -Eh -m5 -A5 "$SANITIZER_RE" "$@" >&2
		return 1
	fi
	return 0
}

# bail NAME [DETAIL...]: record a failure that makes the rest pointless, then finish.
bail()
{
	fail "$@"
	finish
}

_common_exit()
{
	local rc=$? i
	trap - EXIT INT TERM HUP
	set +e
	for ((i = ${#_ON_EXIT[@]} - 1; i >= 0; i--)); do
		eval "${_ON_EXIT[i]}" >&2
	done
	if { [ "$rc" -ne 0 ] || [ "$T_FAILED" -gt 0 ]; } && [ -n "${ACMERA_TEST_ARTIFACTS:-}" ]; then
		mkdir -p "$ACMERA_TEST_ARTIFACTS" &&
			(cd "$TEST_TMP" && find . -type f -name '*.log' -size -8M \
				-exec cp --parents {} "$ACMERA_TEST_ARTIFACTS" \;) 2>/dev/null
	fi
	if [ "${ACMERA_TEST_KEEP:-0}" = 1 ]; then
		note "kept $TEST_TMP"
	else
		rm -rf "$TEST_TMP"
	fi
	exit "$rc"
}
trap _common_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
